// Test support: see the files of this target.

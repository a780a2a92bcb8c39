extension XeroML {
    /// A cached value, or `nil`. The cache lives in the store's file, so it survives restarts; it is
    /// meant for evaluators whose answers are costly to recompute, such as LLM judges.
    ///
    /// - Parameters:
    ///   - namespace: who owns the entry (e.g. `"judge"`), so owners can be cleared apart.
    ///   - key: a key that captures every input of the computation (e.g. a hash of model, prompt and
    ///     parameters).
    public func cachedValue(namespace: String, key: String) async throws -> JSONValue? {
        try await store.read { db in
            try db.queryFirst("SELECT value FROM cache_entries WHERE namespace = ? AND key = ?",
                              [.text(namespace), .text(key)]) { parseStored($0.text(0)) } ?? nil
        }
    }

    /// Stores `value` under (`namespace`, `key`), replacing an earlier entry.
    public func storeCachedValue(_ value: JSONValue, namespace: String, key: String) async throws {
        try await store.write { db in
            try db.run("""
                INSERT INTO cache_entries(namespace, key, value, created_us) VALUES (?, ?, ?, ?)
                ON CONFLICT(namespace, key) DO UPDATE SET value = excluded.value, created_us = excluded.created_us
                """, [.text(namespace), .text(key), .text(value.jsonString), .integer(nowMicroseconds())])
        }
    }

    /// Removes the entries of `namespace` (every entry with `nil`). Returns how many were removed.
    @discardableResult
    public func clearCache(namespace: String? = nil) async throws -> Int {
        try await store.write { db in
            if let namespace {
                try db.run("DELETE FROM cache_entries WHERE namespace = ?", [.text(namespace)])
            } else {
                try db.run("DELETE FROM cache_entries")
            }
            return db.changes
        }
    }
}

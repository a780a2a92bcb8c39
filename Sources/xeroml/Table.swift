import XeroML

/// Plain-text tables for terminal output: the library's, which escapes every cell.
typealias Table = TextTable

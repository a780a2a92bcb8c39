import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file an import reads: the path itself when it is a regular file (memory-mapped by the
/// importer), else a temporary copy of the stream (standard input, a named pipe, a character device).
///
/// A stream cannot be mapped or read twice, and reading it inside the import's transaction would keep
/// the store locked for as long as the other end of the pipe takes; so it is copied first, a block at
/// a time (memory stays flat), and the copy is imported like any file, then removed.
struct ImportSource: Sendable {
    /// How errors name the input: the path, or `<stdin>` for standard input.
    let name: String
    /// A regular file holding the input.
    let readablePath: String
    /// Whether ``readablePath`` is a temporary copy to remove.
    private let isCopy: Bool

    /// The paths that mean this process's standard input.
    static let standardInputPaths: Set<String> = ["/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"]

    /// The source for `path`, copying a stream to a temporary file off the calling task's thread.
    static func open(_ path: String) async throws -> ImportSource {
        if standardInputPaths.contains(path) {
            return try await copy(name: "<stdin>", closeAfter: false) { FileHandle.standardInput }
        }
        var info = stat()
        guard stat(path, &info) == 0 else {
            let reason = errno == ENOENT ? "no such file" : String(cString: strerror(errno))
            throw XeroMLError(.importFailed, "\(path): cannot read the file (\(reason))")
        }
        switch info.st_mode & S_IFMT {
        case S_IFREG:
            return ImportSource(name: path, readablePath: path, isCopy: false)
        case S_IFDIR:
            throw XeroMLError(.importFailed, "\(path): cannot read the file (it is a directory)")
        default:
            // A named pipe, a character device, a socket: a stream. Opening a named pipe waits for its
            // writer, so it is opened on the copying thread too.
            return try await copy(name: path, closeAfter: true) {
                guard let handle = FileHandle(forReadingAtPath: path) else {
                    throw XeroMLError(.importFailed, "\(path): cannot read the file (\(String(cString: strerror(errno))))")
                }
                return handle
            }
        }
    }

    /// Copies everything the handle made by `open` yields into a new temporary file, on a thread of
    /// its own (opening a named pipe, and reading one, block until the writer opens it, sends more or
    /// closes it). With `closeAfter`, the handle is closed afterwards (not standard input).
    private static func copy(name: String, closeAfter: Bool,
                             open: @escaping @Sendable () throws -> FileHandle) async throws -> ImportSource {
        let temporary = FileManager.default.temporaryDirectory
            .appendingPathComponent("xeroml-import-\(UUID().uuidString)").path
        return try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global(qos: .userInitiated).async {
                continuation.resume(with: Result {
                    let handle = try open()
                    defer { if closeAfter { try? handle.close() } }
                    guard FileManager.default.createFile(atPath: temporary, contents: nil),
                          let output = FileHandle(forWritingAtPath: temporary) else {
                        throw XeroMLError(.importFailed,
                            "\(name): cannot copy the input to a temporary file in \(FileManager.default.temporaryDirectory.path)")
                    }
                    do {
                        defer { try? output.close() }
                        while let block = try handle.read(upToCount: 1 << 16), !block.isEmpty {
                            try output.write(contentsOf: block)
                        }
                    } catch {
                        try? FileManager.default.removeItem(atPath: temporary)
                        throw XeroMLError(.importFailed, "\(name): cannot read the input (\(error.localizedDescription))")
                    }
                    return ImportSource(name: name, readablePath: temporary, isCopy: true)
                })
            }
        }
    }

    /// Removes the temporary copy, if any.
    func close() {
        if isCopy { try? FileManager.default.removeItem(atPath: readablePath) }
    }
}

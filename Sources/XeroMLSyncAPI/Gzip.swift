public import Foundation
internal import XeroMLCZlib

/// gzip compression of sync request bodies (`Content-Encoding: gzip`), over the system's zlib.
///
/// Chunks of a run are mostly repeated JSON keys and similar text; gzip at level 1 shrinks them
/// several times over for little CPU. Decompression takes a limit on the inflated size, so a small
/// body cannot expand into an unbounded allocation on the server.
public enum Gzip {
    /// Why a body could not be compressed or decompressed.
    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The body is not a complete gzip stream (zlib's message).
        case malformed(String)
        /// The inflated body would exceed `limit` bytes.
        case tooLarge(limit: Int)

        public var description: String {
            switch self {
            case .malformed(let message): "the body is not valid gzip: \(message)"
            case .tooLarge(let limit): "the body inflates to more than \(limit) bytes"
            }
        }
    }

    /// `data` as one gzip stream.
    public static func compress(_ data: Data, level: Int32 = 1) throws -> Data {
        var stream = z_stream()
        guard xeroml_deflate_init_gzip(&stream, level) == Z_OK else {
            throw Failure.malformed("deflateInit2 failed")
        }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(data.count)))
        var output = Data(count: bound)
        let written: Int = try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            try output.withUnsafeMutableBytes { (out: UnsafeMutableRawBufferPointer) in
                stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
                stream.avail_in = uInt(input.count)
                stream.next_out = out.bindMemory(to: Bytef.self).baseAddress
                stream.avail_out = uInt(out.count)
                let status = deflate(&stream, Z_FINISH)
                guard status == Z_STREAM_END else {
                    throw Failure.malformed("deflate returned \(status)")
                }
                return out.count - Int(stream.avail_out)
            }
        }
        output.count = written
        return output
    }

    /// The bytes of the gzip stream `data`, refusing more than `limit` of them.
    public static func decompress(_ data: Data, limit: Int) throws -> Data {
        var stream = z_stream()
        guard xeroml_inflate_init_gzip(&stream) == Z_OK else {
            throw Failure.malformed("inflateInit2 failed")
        }
        defer { inflateEnd(&stream) }
        var output = Data()
        let slice = 64 * 1024
        var buffer = [UInt8](repeating: 0, count: slice)
        try data.withUnsafeBytes { (input: UnsafeRawBufferPointer) in
            stream.next_in = UnsafeMutablePointer(mutating: input.bindMemory(to: Bytef.self).baseAddress)
            stream.avail_in = uInt(input.count)
            while true {
                let (status, produced) = buffer.withUnsafeMutableBufferPointer { out -> (Int32, Int) in
                    stream.next_out = out.baseAddress
                    stream.avail_out = uInt(slice)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    return (status, slice - Int(stream.avail_out))
                }
                if output.count + produced > limit { throw Failure.tooLarge(limit: limit) }
                output.append(contentsOf: buffer[0..<produced])
                switch status {
                case Z_STREAM_END:
                    return
                case Z_OK:
                    continue
                case Z_BUF_ERROR where produced > 0:
                    continue
                default:
                    let message = stream.msg.map { String(cString: $0) } ?? "truncated or corrupt stream (zlib status \(status))"
                    throw Failure.malformed(message)
                }
            }
        }
        return output
    }
}

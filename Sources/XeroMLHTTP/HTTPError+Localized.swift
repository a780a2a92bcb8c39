public import Foundation

extension HTTPError: LocalizedError {
    /// The same sentence as ``description``: the message, the wait the server asked for, and the
    /// start of an unsuccessful response's body.
    public var errorDescription: String? { description }
}

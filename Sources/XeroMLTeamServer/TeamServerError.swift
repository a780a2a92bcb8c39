import Foundation
import PostgresNIO
import XeroMLSyncAPI

/// Why the team server could not start or do what was asked, outside of an HTTP request.
public enum TeamServerError: Error, Sendable, CustomStringConvertible {
    /// A flag or the database URL is wrong.
    case configuration(String)
    /// The database was migrated by a newer `xeroml-server`.
    case newerSchema(database: Int, server: Int)
    /// PostgreSQL cannot be reached or did not answer in time.
    case unavailable(String)
    /// An administrative command cannot be done (unknown project, duplicate name…).
    case invalid(String)

    public var description: String {
        switch self {
        case .configuration(let message), .unavailable(let message), .invalid(let message): message
        case .newerSchema(let database, let server):
            "the database's schema is version \(database), newer than this xeroml-server knows (version \(server)); "
                + "upgrade xeroml-server, or point it at another database"
        }
    }

    /// A readable sentence for `error`, with PostgreSQL's message when there is one (never bound values).
    static func describe(_ error: any Error) -> String {
        let error = unwrap(error)
        if let error = error as? TeamServerError { return error.description }
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                return "PostgreSQL: \(message) (\(error.serverInfo?[.sqlState] ?? "?"))"
            }
            return "PostgreSQL connection: \(error.code)"
        }
        return String(describing: error)
    }

    /// The error inside a failed transaction.
    static func unwrap(_ error: any Error) -> any Error {
        if let error = error as? PostgresTransactionError {
            return error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError ?? error
        }
        return error
    }
}

/// An error answer of the `/v1` API: an ``APIErrorBody`` with its status.
struct APIError: Error, Sendable {
    var status: Int
    var code: String
    var message: String
    var field: String?
    var missingChunks: [Int]?

    var body: APIErrorBody {
        APIErrorBody(.init(status: status, code: code, message: message, field: field, missingChunks: missingChunks))
    }

    static func invalid(_ message: String, field: String? = nil) -> APIError {
        APIError(status: 400, code: "invalid", message: message, field: field)
    }

    static let unauthorized = APIError(
        status: 401, code: "unauthorized",
        message: "the request needs a valid project key: Authorization: Bearer xrml_<key id>_<secret> (unknown and revoked keys are refused)")

    static func notFound(_ message: String) -> APIError {
        APIError(status: 404, code: "not_found", message: message)
    }

    static func tooLarge(_ message: String) -> APIError {
        APIError(status: 413, code: "too_large", message: message)
    }

    static func conflict(_ message: String) -> APIError {
        APIError(status: 409, code: "conflict", message: message)
    }

    static func unavailable(_ message: String) -> APIError {
        APIError(status: 503, code: "unavailable", message: message)
    }

    static let internalError = APIError(
        status: 500, code: "internal", message: "the server could not complete the request; its log has the details")

    /// The answer for any error thrown while serving a request.
    static func from(_ error: any Error) -> APIError {
        let error = TeamServerError.unwrap(error)
        switch error {
        case let error as APIError:
            return error
        case let error as DecodingError:
            return fromDecoding(error)
        case TeamServerError.unavailable(let message):
            return .unavailable(message)
        case let error as PSQLError:
            return fromPostgres(error)
        default:
            if String(reflecting: type(of: error)).contains("ConnectionPoolError") {
                return .unavailable("the database is unreachable; try again shortly")
            }
            return .internalError
        }
    }

    private static func fromPostgres(_ error: PSQLError) -> APIError {
        guard let state = error.serverInfo?[.sqlState] else {
            // No answer from PostgreSQL: the connection failed or was closed under the request.
            return .unavailable("the database is unreachable; try again shortly")
        }
        switch state.prefix(2) {
        case "22", "54":
            // Data exceptions (a NUL character in text, a number out of range) and values too large
            // for an index: the request's fault.
            return .invalid("a value of the request cannot be stored: \(error.serverInfo?[.message] ?? state)")
        case "08", "53", "57", "40":
            // Connection failures, exhausted resources, shutdown, and transactions aborted by PostgreSQL.
            return .unavailable("the database is unavailable (\(state)); try again shortly")
        default:
            return .internalError
        }
    }

    /// The 400 for a body that is not JSON or does not match the schema, naming the field.
    private static func fromDecoding(_ error: DecodingError) -> APIError {
        func path(_ codingPath: [any CodingKey], _ last: (any CodingKey)? = nil) -> String? {
            let keys = codingPath + (last.map { [$0] } ?? [])
            guard !keys.isEmpty else { return nil }
            var text = ""
            for key in keys {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text
        }
        switch error {
        case .keyNotFound(let key, let context):
            let field = path(context.codingPath, key)
            return .invalid("\(field ?? key.stringValue) is required", field: field)
        case .typeMismatch(let type, let context):
            let field = path(context.codingPath)
            return .invalid("\(field ?? "the body") must be \(describe(type))", field: field)
        case .valueNotFound(let type, let context):
            let field = path(context.codingPath)
            return .invalid("\(field ?? "the body") must be \(describe(type)), not null", field: field)
        case .dataCorrupted(let context):
            let field = path(context.codingPath)
            if field == nil {
                return .invalid("the body is not valid JSON")
            }
            return .invalid("\(field!) is malformed: \(context.debugDescription)", field: field)
        @unknown default:
            return .invalid("the body does not match the schema")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: "an integer"
        case is Double.Type: "a number"
        case is Bool.Type: "a boolean"
        default:
            String(describing: type).hasPrefix("Array") ? "an array" : "an object"
        }
    }
}

import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Who may do what. Each role includes the ones before it:
///   viewer    reads: health, transactions, accounts, snapshots, the event stream
///   client    submits transactions (applications)
///   operator  abort, choose a deadlock victim, reconcile
///   chaos     inject and heal faults; refused unless `sandhi serve --allow-faults`
public enum Role: String, Sendable, CaseIterable, Comparable, Codable {
    case viewer, client, `operator`, chaos

    public static func < (lhs: Role, rhs: Role) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// The one making a request: a name for the audit trail, and what they may do.
public struct Caller: Sendable, Equatable {
    public var name: String
    public var role: Role
    /// How they reached the service: `unix` or `tcp`.
    public var via: String
}

/// The request context the service's routes see: Hummingbird's, plus the caller once the
/// `Authenticator` has named them.
public struct ServiceRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public var caller: Caller?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }
}

/// Names the caller of every request, or refuses it with 401.
///   - On the unix socket, the file system has already authenticated them (the socket is mode
///     0600): they act as the service's own user, with every role but `chaos` unless faults are
///     allowed.
///   - Over TCP, a bearer token from the tokens file names them and their role.
struct Authenticator: RouterMiddleware {
    typealias Context = ServiceRequestContext

    enum Listener: Sendable {
        case unix(user: String, role: Role)
        case tcp(TokenFile)
    }

    let listener: Listener

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        switch listener {
        case .unix(let user, let role):
            context.caller = Caller(name: user, role: role, via: "unix")
        case .tcp(let tokens):
            guard let header = request.headers[.authorization] else {
                return ServiceResponse.refusal(.unauthorized, field: "Authorization", "a bearer token is needed",
                                               headers: [.wwwAuthenticate: "Bearer"])
            }
            guard header.hasPrefix("Bearer "), let caller = tokens.caller(presenting: String(header.dropFirst("Bearer ".count))) else {
                return ServiceResponse.refusal(.unauthorized, field: "Authorization", "the bearer token is not one this service knows",
                                               headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
            }
            context.caller = caller
        }
        return try await next(request, context)
    }
}

/// Lets a request through only if its caller's role reaches `role` (403 naming both if not).
struct RequireRole: RouterMiddleware {
    typealias Context = ServiceRequestContext
    let role: Role

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let caller = context.caller else {
            return ServiceResponse.refusal(.unauthorized, field: "Authorization", "no caller")
        }
        guard caller.role >= role else {
            return ServiceResponse.refusal(.forbidden, field: "Authorization",
                                           "\(caller.name) is a \(caller.role.rawValue); this needs the \(role.rawValue) role")
        }
        return try await next(request, context)
    }
}

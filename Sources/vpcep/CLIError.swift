import ArgumentParser
import Foundation
import VPCEPClient

/// Why a command failed, and the exit code that says so (README "Exit codes").
struct CLIError: Error {
    var error: VPCEPError
    /// A problem with local settings (missing flag, unreadable certificate) rather than a server answer.
    var isConfiguration = false

    static func configuration(_ message: String) -> CLIError {
        CLIError(error: VPCEPError(code: .invalidArgument, reason: .clientConfiguration, message: message),
                 isConfiguration: true)
    }

    var exitCode: Int32 {
        if isConfiguration { return 78 }
        return Self.exitCode(for: error.code)
    }

    /// One exit code per class of status, so scripts can branch without parsing text.
    static func exitCode(for code: StatusCode) -> Int32 {
        switch code {
        case .ok: 0
        case .invalidArgument, .outOfRange: 3
        case .notFound: 4
        case .alreadyExists, .aborted: 5
        case .permissionDenied: 6
        case .unauthenticated: 7
        case .resourceExhausted: 8
        case .failedPrecondition: 9
        case .unavailable, .deadlineExceeded, .cancelled: 10
        case .unimplemented: 12
        default: 1
        }
    }

    /// Prints the error on stderr: one line for people, an object in JSON mode.
    func report(format: OutputFormat) {
        let text: String
        switch format {
        case .json:
            var fields: [(String, JSONValue)] = [
                ("code", .string(error.code.name)), ("reason", .string(error.reason.rawValue)), ("message", .string(error.message)),
            ]
            if let field = error.field { fields.append(("field", .string(field))) }
            if !error.requestID.isEmpty { fields.append(("request_id", .string(error.requestID))) }
            text = JSONValue.object(fields).serialized()
        case .table, .ids:
            var line = Terminal.red("error:") + " \(TerminalText.escaped(error.message))"
            if let field = error.field { line += "\n  field:  \(field)" }
            line += "\n  status: \(error.code.name) (\(error.reason))"
            if let hint = Self.hint(for: error) { line += "\n  hint:   \(hint)" }
            text = line
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    private static func hint(for error: VPCEPError) -> String? {
        switch error.reason {
        case .quotaExceeded: "delete unused resources in this region, or ask an operator to raise the quota"
        case .regionNotServed: "pass --region with one of the regions the message names"
        case .clientCertificateRejected: "use a certificate signed by the server's CA, with a vpcep://tenant/<id> URI SAN"
        case .serverCertificateInvalid: "check that --ca is the CA that signed the server's certificate and --server names a host it covers"
        case .connectionFailed, .connectionClosed: "check --server and that vpcep-server is running"
        case .notAllowedByService:
            "ask the service's owner to add you to its allow-list (vpcep permission add SERVICE <your tenant id>)"
        case .resourceInUse: "delete what uses it first (services, endpoints, backends, subnets)"
        case .revisionMismatch: "someone changed it since you read it: get it again, then retry with the new --revision"
        case .operatorRequired, .gatewayRequiresOperator, .publicRequiresOperator: "run this with an operator's certificate"
        case .connectionStateInvalid:
            "only waiting connections can be accepted, and waiting or accepted ones rejected; a rejected one stays rejected"
        default: nil
        }
    }
}

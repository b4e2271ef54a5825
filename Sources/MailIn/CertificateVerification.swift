import Foundation
import Synchronization
import SwiftASN1
import X509

/// Verifies a server's certificate chain and name. libetpan's GnuTLS build accepts any certificate, so the
/// connection calls this after the handshake and before it sends the password.
public enum CertificateVerification {
    public static let systemTrustStorePath = "/etc/ssl/certs/ca-certificates.crt"

    /// Checks `chainDER` (leaf first, as the server sent it) against the CAs in `caFile` (or the system
    /// store) with RFC 5280 rules and the server name (DNS name or IP literal). Throws `certificateNotTrusted`.
    public static func verify(
        chainDER: [[UInt8]], serverName: String, caFile: String?, now: Date = Date()
    ) async throws {
        guard let leafDER = chainDER.first else {
            throw IMAPError.certificateNotTrusted("the server sent no certificate")
        }
        let leaf: Certificate
        var intermediates: [Certificate] = []
        do {
            leaf = try Certificate(derEncoded: leafDER)
            for der in chainDER.dropFirst() { intermediates.append(try Certificate(derEncoded: der)) }
        } catch {
            throw IMAPError.certificateNotTrusted("the server's certificate cannot be parsed (\(error))")
        }
        let roots = try trustRoots(caFile: caFile)
        let isIP = isIPAddress(serverName)
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) {
            RFC5280Policy(validationTime: now)
            ServerIdentityPolicy(serverHostname: isIP ? nil : serverName, serverIP: isIP ? serverName : nil)
        }
        let result = await verifier.validate(leafCertificate: leaf, intermediates: CertificateStore(intermediates))
        switch result {
        case .validCertificate:
            return
        case .couldNotValidate(let failures):
            let store = caFile ?? "the system store (\(systemTrustStorePath))"
            let subject = "\(leaf.subject)"
            if failures.isEmpty {
                throw IMAPError.certificateNotTrusted(
                    "no chain from \"\(subject)\" (issuer \"\(leaf.issuer)\") to a CA in \(store)")
            }
            let reasons = Set(failures.map { "\($0.policyFailureReason)" }).sorted().joined(separator: "; ")
            throw IMAPError.certificateNotTrusted("\"\(subject)\" for \(serverName): \(reasons)")
        }
    }

    /// Parsed trust anchors, cached per file: the system store holds ~140 certificates.
    static func trustRoots(caFile: String?) throws -> [Certificate] {
        let path = caFile ?? systemTrustStorePath
        if let cached = cache.withLock({ $0[path] }) { return cached }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IMAPError.certificateNotTrusted("cannot read the CA file \(path)")
        }
        let documents: [PEMDocument]
        do {
            documents = try PEMDocument.parseMultiple(pemString: String(decoding: data, as: UTF8.self))
        } catch {
            throw IMAPError.certificateNotTrusted("the CA file \(path) is not PEM (\(error))")
        }
        // One unusual entry in a system bundle must not make every other CA unusable.
        let roots = documents.filter { $0.discriminator == "CERTIFICATE" }.compactMap { try? Certificate(pemDocument: $0) }
        guard !roots.isEmpty else { throw IMAPError.certificateNotTrusted("the CA file \(path) holds no certificate") }
        cache.withLock { $0[path] = roots }
        return roots
    }

    private static let cache = Mutex<[String: [Certificate]]>([:])

    static func isIPAddress(_ name: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, name, &v4) == 1 || inet_pton(AF_INET6, name, &v6) == 1
    }
}

import FaxgateCore
import FaxgateWeb
import XCTest

/// The rule of /metrics and /health/*: loopback and web.metrics_allow, nobody else; a request forwarded by a proxy
/// that is not trusted is judged by metrics_allow alone (else a proxy on the same host would make everyone loopback).
final class ProbeAccessTests: XCTestCase {
    func testLoopbackAndAllowList_andForwardedRequests() {
        var settings = WebSettings()
        settings.metricsAllow = ["10.1.0.0/16"]
        let access = ProbeAccess(settings: settings)
        // Direct requests.
        XCTAssertTrue(access.permits(clientAddress: "127.0.0.1", peerAddress: "127.0.0.1", forwarded: false, trustedProxy: false))
        XCTAssertTrue(access.permits(clientAddress: "::1", peerAddress: "::1", forwarded: false, trustedProxy: false))
        XCTAssertTrue(access.permits(clientAddress: "10.1.2.3", peerAddress: "10.1.2.3", forwarded: false, trustedProxy: false))
        XCTAssertFalse(access.permits(clientAddress: "10.2.0.1", peerAddress: "10.2.0.1", forwarded: false, trustedProxy: false))
        // Through an untrusted proxy on loopback: the client address stayed the peer's, which says nothing.
        XCTAssertFalse(access.permits(clientAddress: "127.0.0.1", peerAddress: "127.0.0.1", forwarded: true, trustedProxy: false))
        // Through a trusted proxy: the forwarded client counts.
        XCTAssertTrue(access.permits(clientAddress: "10.1.9.9", peerAddress: "127.0.0.1", forwarded: true, trustedProxy: true))
        XCTAssertFalse(access.permits(clientAddress: "203.0.113.9", peerAddress: "127.0.0.1", forwarded: true, trustedProxy: true))
        XCTAssertTrue(access.permits(clientAddress: "127.0.0.1", peerAddress: "127.0.0.1", forwarded: true, trustedProxy: true))
    }

    func testNothingConfigured_onlyLoopback() {
        let access = ProbeAccess(settings: WebSettings())
        XCTAssertTrue(access.permits(clientAddress: "127.0.0.1", peerAddress: "127.0.0.1", forwarded: false, trustedProxy: false))
        XCTAssertFalse(access.permits(clientAddress: "192.168.1.10", peerAddress: "192.168.1.10", forwarded: false, trustedProxy: false))
    }
}

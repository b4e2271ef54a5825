import FaxgateCore
import XCTest

/// `web.metrics_allow`: who may read /metrics and /health without a login.
final class AddressAllowListTests: XCTestCase {
    func testAddressesAndRanges_IPv4_IPv6_andMappedIPv4() {
        let list = AddressAllowList(["10.0.0.5", "192.168.1.0/24", "fd00::/8", "2001:db8::1", "172.16.0.0/12"])
        XCTAssertEqual(list.invalid, [])
        for yes in ["10.0.0.5", "192.168.1.0", "192.168.1.255", "fd12:3456::1", "2001:db8::1", "::ffff:10.0.0.5", "172.31.255.1", "[2001:db8::1]"] {
            XCTAssertTrue(list.contains(yes), yes)
        }
        for no in ["10.0.0.6", "192.168.2.1", "fe80::1", "2001:db8::2", "172.32.0.1", "127.0.0.1", "-", "", "10.0.0.5.1", "example.com"] {
            XCTAssertFalse(list.contains(no), no)
        }
    }

    func testInvalidEntriesAreReported_andMatchNothing() {
        let list = AddressAllowList(["10.0.0.0/33", "::1/129", "host.example", "10.0.0.1/x", "10.0.0.1/", "1.2.3.4/32"])
        XCTAssertEqual(list.invalid, ["10.0.0.0/33", "::1/129", "host.example", "10.0.0.1/x", "10.0.0.1/"])
        XCTAssertTrue(list.contains("1.2.3.4"))
        XCTAssertFalse(list.contains("10.0.0.1"))
    }

    func testZeroPrefixMatchesEveryAddressOfItsFamily() {
        let all4 = AddressAllowList(["0.0.0.0/0"])
        XCTAssertTrue(all4.contains("203.0.113.9"))
        XCTAssertFalse(all4.contains("2001:db8::1"))
    }

    func testLoopback() {
        for yes in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] { XCTAssertTrue(AddressAllowList.isLoopback(yes), yes) }
        for no in ["10.0.0.1", "::2", "128.0.0.1", "-", "localhost"] { XCTAssertFalse(AddressAllowList.isLoopback(no), no) }
    }

    func testConfigCheckNamesTheLineOfABadEntry() throws {
        let yaml = """
        spool_directory: /tmp/faxgate-allowlist-test
        capi: {driver: rcapi, host: 127.0.0.1, port: 2662}
        smtp: {host: 127.0.0.1, port: 25, security: none}
        mail: {from: "Faxgate <fax@example.test>"}
        web:
          metrics_allow:
            - 10.0.0.0/8
            - prometheus.example.test
        extensions:
          - name: Empfang
            numbers: ["100"]
            email: [empfang@example.test]
        """
        XCTAssertThrowsError(try ConfigLoader.parse(yaml, file: "test.yaml")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("metrics_allow") && text.contains("prometheus.example.test"), text)
            XCTAssertTrue(text.contains("line 8"), text)
        }
        var fixed = yaml.replacingOccurrences(of: "prometheus.example.test", with: "192.168.10.7")
        fixed += "\n"
        XCTAssertEqual(try ConfigLoader.parse(fixed, file: "test.yaml").web.metricsAllow, ["10.0.0.0/8", "192.168.10.7"])
    }
}

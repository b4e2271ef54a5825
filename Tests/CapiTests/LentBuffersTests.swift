@testable import Capi20
import CapiProtocol
import XCTest

/// The race that aborted the gateway: DATA_B3_IND, then DISCONNECT_IND reach libcapi20 before our DATA_B3_RESP
/// does; the rcapi module reclaims the buffer on DISCONNECT_IND, and a second return trips its assertion.
final class LentBuffersTests: XCTestCase {
    func ind(_ ncci: UInt32, _ handle: UInt16) -> CapiMessage {
        CapiMessage(applID: 1, messageNumber: 1, body: .dataB3Ind(ncci: ncci, handle: handle, flags: 0, data: [1]))
    }
    func resp(_ ncci: UInt32, _ handle: UInt16) -> CapiMessage {
        CapiMessage(applID: 1, messageNumber: 1, body: .dataB3Resp(ncci: ncci, handle: handle))
    }

    func testResponseAfterTheLibrarysDisconnectCleanup_isNotHandedBack() {
        var lent = LentBuffers()
        lent.received(ind(0x10701, 3))
        lent.received(ind(0x10801, 4))   // another call on PLCI 0x801
        lent.received(CapiMessage(applID: 1, messageNumber: 2, body: .disconnectInd(plci: 0x701, reason: CapiInfo(0x3490))))
        XCTAssertFalse(lent.mayPut(resp(0x10701, 3)), "buffer already reclaimed by the library")
        XCTAssertTrue(lent.mayPut(resp(0x10801, 4)), "the other call's buffer is still lent")
        XCTAssertFalse(lent.mayPut(resp(0x10801, 4)), "never twice")
    }

    func testDisconnectB3Response_reclaimsTheNCCIsBuffers() {
        var lent = LentBuffers()
        lent.received(ind(0x10701, 7))
        XCTAssertTrue(lent.mayPut(CapiMessage(applID: 1, messageNumber: 3, body: .disconnectB3Resp(ncci: 0x10701))))
        XCTAssertFalse(lent.mayPut(resp(0x10701, 7)))
    }
}

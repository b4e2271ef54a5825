import FaxgateCore
import Foundation
import Logging
import PostgresNIO

// The outbox shared by every node on the database (OUTBOX helper).
//
// Table `outbox`: one row per mail id, for good. `id` is the primary key, so two nodes queueing the same derived id
// (both mailing a finished job's report at start, both refusing one order mail) store it once. A node takes a
// mail for one attempt with a conditional UPDATE (lease owner + lease end in the database's clock): only one node
// gets it; a node that dies mid-attempt holds it until the lease ends, then another node sends it. After the
// server's 250 `sentAt` is set and the message bytes are dropped in one statement: the row stays as the id's
// tombstone so nobody queues or sends it again. Given-up mails keep their bytes with `failedAt` for the admin.
// `callID`/`jobID` refer to the call/job with ON DELETE CASCADE: retention deleting a call or job deletes its
// outbox rows (and with them the kept bytes of failed mails) in the same statement. Rows about neither (refusal
// replies, digests) carry no fax and stay as tombstones.
extension PostgresStorage: SharedOutboxStorage {
    static var outboxMigrations: [PostgresMigration] {
        [
            PostgresMigration(name: "outbox-v1", statements: [
                """
                CREATE TABLE outbox (
                    id text PRIMARY KEY,
                    envelopeFrom text NOT NULL,
                    recipients text[] NOT NULL,
                    callID bigint REFERENCES call (id) ON DELETE CASCADE,
                    jobID bigint REFERENCES job (id) ON DELETE CASCADE,
                    queuedAt timestamptz NOT NULL,
                    attempts bigint NOT NULL DEFAULT 0,
                    nextAttemptAt timestamptz NOT NULL,
                    lastError text,
                    message bytea,
                    leaseOwner text,
                    leaseUntil timestamptz,
                    sentAt timestamptz,
                    failedAt timestamptz,
                    CHECK (sentAt IS NULL OR failedAt IS NULL),
                    CHECK (message IS NOT NULL OR sentAt IS NOT NULL))
                """,
                "CREATE INDEX outbox_waiting ON outbox (id) WHERE sentAt IS NULL AND failedAt IS NULL",
                "CREATE INDEX outbox_call ON outbox (callID) WHERE callID IS NOT NULL",
                "CREATE INDEX outbox_job ON outbox (jobID) WHERE jobID IS NOT NULL",
            ]),
            // A node that dies between the server's 250 (sentAt committed) and telling the journal must still tell
            // it at the next scan, as the file store's sent marker does: the row stays pending until reportedAt.
            PostgresMigration(name: "outbox-v2-reported", statements: [
                "ALTER TABLE outbox ADD COLUMN reportedAt timestamptz",
                "UPDATE outbox SET reportedAt = sentAt WHERE sentAt IS NOT NULL",
                "CREATE INDEX outbox_unreported ON outbox (id) WHERE sentAt IS NOT NULL AND reportedAt IS NULL",
            ]),
        ]
    }

    public func sharedOutboxStore(lease: Duration, logger: Logger) -> any OutboxStore {
        PostgresOutboxStore(storage: self, node: node, lease: lease, logger: logger)
    }
}

/// One node's view of the shared outbox table.
struct PostgresOutboxStore: OutboxStore {
    let storage: PostgresStorage
    let node: String
    let lease: Duration
    let logger: Logger

    private static let columns = "id, envelopeFrom, recipients, callID, jobID, queuedAt, attempts, nextAttemptAt, lastError, failedAt"

    func add(_ e: Outbox.Envelope, message: [UInt8]) async throws -> Bool {
        let rows = try await storage.rows("queue mail", """
            INSERT INTO outbox (id, envelopeFrom, recipients, callID, jobID, queuedAt, attempts, nextAttemptAt, lastError, message)
            VALUES (\(e.id), \(e.envelopeFrom), \(e.recipients), \(e.callID), \(e.jobID), \(e.queuedAt), \(e.attempts),
                    \(e.nextAttemptAt), \(e.lastError), \(ByteBuffer(bytes: message)))
            ON CONFLICT (id) DO NOTHING
            RETURNING id
            """)
        return !rows.isEmpty
    }

    func isKnown(_ id: String) async throws -> Bool {
        try await !storage.rows("look up mail", "SELECT 1 FROM outbox WHERE id = \(id)").isEmpty
    }

    func pending() async throws -> [Outbox.Envelope] {
        try await storage.rows("list outbox", PostgresQuery(unsafeSQL:
            "SELECT \(Self.columns) FROM outbox WHERE failedAt IS NULL AND (sentAt IS NULL OR reportedAt IS NULL) ORDER BY id"))
            .map(Self.envelope)
    }

    func take(_ e: Outbox.Envelope) async throws -> OutboxTake {
        // One statement: PostgreSQL re-checks the WHERE on a row another node just updated, so only one node
        // gets it. Our own unexpired lease counts as free (this node restarted after dying mid-attempt).
        let seconds = Double(lease.components.seconds) + Double(lease.components.attoseconds) / 1e18
        let claimed = try await storage.rows("claim mail", """
            UPDATE outbox SET leaseOwner = \(node), leaseUntil = now() + make_interval(secs => \(seconds))
            WHERE id = \(e.id) AND sentAt IS NULL AND failedAt IS NULL AND nextAttemptAt <= \(Date())
              AND (leaseUntil IS NULL OR leaseUntil < now() OR leaseOwner = \(node))
            RETURNING id, envelopeFrom, recipients, callID, jobID, queuedAt, attempts, nextAttemptAt, lastError, failedAt, message
            """)
        if let row = claimed.first {
            guard let bytes = try row.value("message", as: ByteBuffer?.self) else { return .missing }
            return .message(try Self.envelope(row), Array(buffer: bytes))
        }
        let state = try await storage.rows("look up mail", "SELECT sentAt IS NOT NULL AS sent FROM outbox WHERE id = \(e.id)")
        guard let row = state.first else { return .missing }
        return try row.value("sent", as: Bool.self) ? .sent : .heldElsewhere
    }

    func wasSent(_ id: String) async throws -> Bool {
        try await !storage.rows("look up mail", "SELECT 1 FROM outbox WHERE id = \(id) AND sentAt IS NOT NULL").isEmpty
    }

    func markSent(_ e: Outbox.Envelope) async throws {
        // sentAt and the dropped bytes in one commit: the row is the tombstone from here on.
        try await storage.run("mark mail sent", """
            UPDATE outbox SET sentAt = now(), message = NULL, leaseOwner = NULL, leaseUntil = NULL, failedAt = NULL
            WHERE id = \(e.id)
            """)
    }

    func removeQueued(_ envelope: Outbox.Envelope, meta: Logger.Metadata) async {
        // markSent dropped the bytes already; the row stays as the id's tombstone and leaves the pending list.
        do {
            try await storage.run("mark mail reported", "UPDATE outbox SET reportedAt = now() WHERE id = \(envelope.id) AND sentAt IS NOT NULL")
        } catch {
            // Seen again at the next scan: wasSent, so never sent again, only reported again.
            storage.logger.error("mail delivered, but the outbox row cannot be closed: \(error)", metadata: meta)
        }
    }

    func recordRetry(_ e: Outbox.Envelope) async throws {
        try await storage.run("record mail retry", """
            UPDATE outbox SET attempts = \(e.attempts), nextAttemptAt = \(e.nextAttemptAt), lastError = \(e.lastError),
                   leaseOwner = NULL, leaseUntil = NULL
            WHERE id = \(e.id) AND sentAt IS NULL AND failedAt IS NULL
            """)
    }

    func markFailed(_ e: Outbox.Envelope, meta: Logger.Metadata) async -> Bool {
        do {
            try await storage.run("mark mail failed", """
                UPDATE outbox SET failedAt = \(e.failedAt ?? Date()), lastError = \(e.lastError), attempts = \(e.attempts),
                       leaseOwner = NULL, leaseUntil = NULL
                WHERE id = \(e.id) AND sentAt IS NULL
                """)
            return true
        } catch {
            logger.error("cannot record the undeliverable mail as failed: \(error)", metadata: meta)
            return false
        }
    }

    func failedCount() async throws -> Int {
        let rows = try await storage.rows("count failed mails", "SELECT count(*) AS n FROM outbox WHERE failedAt IS NOT NULL")
        return Int(try rows.first?.value("n", as: Int64.self) ?? 0)
    }

    /// Mails other nodes queued are found by this scan (a node that queued one may die before sending it).
    var rescanInterval: TimeInterval? { 30 }

    func sweepUnreadable() async {
        // Typed columns: a row cannot be half-written or unreadable.
    }

    static func envelope(_ row: PostgresRandomAccessRow) throws -> Outbox.Envelope {
        Outbox.Envelope(id: try row.value("id"), envelopeFrom: try row.value("envelopeFrom"), recipients: try row.value("recipients"),
                        callID: try row.value("callID"), queuedAt: try row.value("queuedAt"),
                        attempts: Int(try row.value("attempts", as: Int64.self)), nextAttemptAt: try row.value("nextAttemptAt"),
                        lastError: try row.value("lastError"), jobID: try row.value("jobID"), failedAt: try row.value("failedAt"))
    }
}

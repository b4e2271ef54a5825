import ArgumentParser
import FaxgateCore
import Foundation
import Logging
import PostgresStorage
import SQLiteStorage

/// `faxgate storage`: moving an installation between storage plugins.
struct StorageCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "storage", abstract: "Work with the storage plugins.", subcommands: [Migrate.self])

    struct Migrate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy this (SQLite) installation into the PostgreSQL database of another configuration.",
            discussion: """
                Stop `faxgate serve` first. Copies every table and document (rendered jobs, raw order mails) in \
                batches; a run that was interrupted continues where it stopped when started again. Verifies row \
                counts and a checksum of every row and document on both sides. Refuses a target database that \
                already holds rows that did not come from this installation.
                """)
        @OptionGroup var options: ConfigOption
        @Option(name: .customLong("to"), help: "Configuration of the target (storage.driver: postgres).") var to: String
        @Option(help: "Rows per batch (one transaction each).") var batch = 500
        @Option(help: ArgumentHelp("Stop after this many batches (an interrupted run, for tests).", visibility: .hidden))
        var stopAfterBatches: Int?

        func run() async throws {
            let config = try options.loadOrExit()
            guard config.storage.driver == "sqlite" else {
                throw ValidationError("storage migrate copies from an SQLite installation; \(options.path) has driver \(config.storage.driver)")
            }
            let target: Configuration
            do { target = try ConfigLoader.load(path: to) } catch {
                FileHandle.standardError.write(Data("\(to): \(error)\n".utf8))
                throw ExitCode(78)
            }
            guard target.storage.driver == "postgres", let pgSettings = target.storage.postgres else {
                throw ValidationError("\(to): storage.driver must be postgres with storage.postgres set")
            }
            let path = config.storage.path ?? config.spoolDirectory + "/faxgate.sqlite"
            guard FileManager.default.fileExists(atPath: path) else { throw ValidationError("no SQLite database at \(path)") }
            let source = try SQLiteStorage(path: path, readOnly: true)
            var logger = Logger(label: "faxgate.storage.migrate")
            logger.logLevel = .warning
            let pg = PostgresStorage(connection: try PostgresConnectionSettings(pgSettings), node: target.node.effectiveID,
                                     spoolDirectory: target.spoolDirectory, logger: logger)
            defer { pg.close() }
            try await pg.migrate()
            try await pg.migratePrivacy()

            let sourceID = "sqlite:" + (URL(fileURLWithPath: path).resolvingSymlinksInPath().path)
            print("source: \(sourceID)")
            print("target: postgres \(pgSettings.host):\(pgSettings.port)/\(pgSettings.database)")
            let migration = StorageMigration(source: source, target: pg, sourceID: sourceID, batchSize: max(1, batch),
                                             stopAfterBatches: stopAfterBatches)
            let results: [StorageMigration.TableResult]
            do {
                results = try await migration.run()
            } catch let stop as StorageMigration.Stopped {
                print("stopped after \(stop.batches) batches (\(stop.rows) rows); run again to continue")
                throw ExitCode(75)  // EX_TEMPFAIL: incomplete, try again
            }
            print("table            source rows  target rows  copied now  documents  checksum")
            var bad = 0
            for r in results {
                let ok = r.sourceRows == r.targetRows && r.sourceChecksum == r.targetChecksum
                    && r.sourceDocuments == r.targetDocuments && r.sourceDocumentChecksum == r.targetDocumentChecksum
                if !ok { bad += 1 }
                print(String(format: "%@ %11d  %11d  %10d  %9@  %@", r.table.padding(toLength: 16, withPad: " ", startingAt: 0),
                             r.sourceRows, r.targetRows, r.copied, r.documentColumn == nil ? "-" : "\(r.sourceDocuments)",
                             ok ? "ok " + String(r.sourceChecksum.prefix(16)) : "MISMATCH source \(r.sourceChecksum.prefix(16)) target \(r.targetChecksum.prefix(16))"))
            }
            if bad > 0 {
                print("verification failed for \(bad) table(s)")
                throw ExitCode(1)
            }
            print("verified: \(results.count) tables, \(results.map(\.sourceRows).reduce(0, +)) rows, \(results.map(\.sourceDocuments).reduce(0, +)) documents")
        }
    }
}

/// The copy itself: tables in foreign-key order, columns matched by name (case and underscores aside), each batch
/// committed with its resume point, then sequences, then verification by count and checksum on both sides.
struct StorageMigration {
    let source: SQLiteStorage
    let target: PostgresStorage
    let sourceID: String
    let batchSize: Int
    let stopAfterBatches: Int?

    struct Stopped: Error { var batches: Int; var rows: Int }

    struct TableResult {
        var table: String
        var sourceRows = 0, targetRows = 0, copied = 0
        var sourceChecksum = "", targetChecksum = ""
        var documentColumn: String?
        var sourceDocuments = 0, targetDocuments = 0
        var sourceDocumentChecksum = "", targetDocumentChecksum = ""
    }

    /// Documents that live as files beside an SQLite row: the table's path column. PostgreSQL keeps the bytes
    /// themselves (any node must be able to read them).
    static let documentPaths: [String: String] = ["job": "sffpath", "intake": "rawpath"]

    /// Where a source table goes.
    struct Plan {
        var source: TableDescription
        var target: PostgresImportTable
        var targetColumns: [String]  // per source column
        var pathColumn: Int?  // index of the document path column in the source
        var document: DocumentTarget?
        var keyIndex: Int?  // the integer key's index in the source columns
    }

    /// Where the document bytes go: a bytea column of the row's own table; a table of documents keyed by spool
    /// path that the row references by id (several jobs share one rendering); or a table beside keyed by row id.
    struct DocumentTarget {
        enum Place { case inRow, byPath(idColumn: String, pathColumn: String, referenceColumn: String), beside }
        var table: PostgresImportTable
        var keyColumn: String
        var bytesColumn: String
        var place: Place
        var inRow: Bool { if case .inRow = place { return true } else { return false } }
    }

    func plans() async throws -> [Plan] {
        let sourceTables = try await source.exportTables()
        let targetTables = try await target.importTables()
        var byName: [String: PostgresImportTable] = [:]
        for t in targetTables { byName[TableCanonical.normalize(t.name)] = t }
        // Foreign-key order: parents before children.
        var ordered: [TableDescription] = []
        var placed = Set<String>()
        var pending = sourceTables
        let names = Set(sourceTables.map(\.name))
        while !pending.isEmpty {
            let ready = pending.filter { t in t.parents.allSatisfy { placed.contains($0) || !names.contains($0) } }
            guard !ready.isEmpty else { ordered += pending; break }  // a cycle: keep the rest in name order
            for t in ready { ordered.append(t); placed.insert(t.name) }
            pending.removeAll { placed.contains($0.name) }
        }
        var used = Set<String>()
        var plans: [Plan] = []
        for s in ordered {
            let n = TableCanonical.normalize(s.name)
            guard let t = [n, n + "s", n + "es", "faxgate" + n].lazy.compactMap({ byName[$0] }).first else {
                throw StorageError("the target database has no table for \(s.name)")
            }
            used.insert(t.name)
            var cols: [String] = []
            for c in s.columns {
                guard let tc = t.columns.first(where: { TableCanonical.normalize($0.name) == TableCanonical.normalize(c.name) }) else {
                    throw StorageError("the target table \(t.name) has no column for \(s.name).\(c.name)")
                }
                cols.append(tc.name)
            }
            var plan = Plan(source: s, target: t, targetColumns: cols,
                            keyIndex: s.integerKey.flatMap { k in s.columns.firstIndex { $0.name == k } })
            if let pathName = Self.documentPaths[n] {
                plan.pathColumn = s.columns.firstIndex { TableCanonical.normalize($0.name) == pathName }
            }
            plans.append(plan)
        }
        // Document targets, after all tables are matched (a table beside must be one no source table uses).
        for i in plans.indices where plans[i].pathColumn != nil {
            let p = plans[i]
            guard let key = p.keyIndex else { throw StorageError("\(p.source.name) has no integer key for its documents") }
            if let bytes = p.target.columns.first(where: { $0.dataType == "bytea" && !p.targetColumns.contains($0.name) }) {
                plans[i].document = DocumentTarget(table: p.target, keyColumn: p.targetColumns[key], bytesColumn: bytes.name, place: .inRow)
                continue
            }
            let n = TableCanonical.normalize(p.source.name)
            let pathName = TableCanonical.normalize(p.source.columns[p.pathColumn!].name)
            let unmappedInteger = p.target.columns.first { ["bigint", "integer"].contains($0.dataType) && !p.targetColumns.contains($0.name) }
            for t in targetTables where !used.contains(t.name) {
                guard let b = t.columns.first(where: { $0.dataType == "bytea" }) else { continue }
                if let path = t.columns.first(where: { TableCanonical.normalize($0.name) == pathName }),
                   let id = t.columns.first(where: { $0.generated }), let ref = unmappedInteger {
                    plans[i].document = DocumentTarget(table: t, keyColumn: p.targetColumns[key], bytesColumn: b.name,
                                                       place: .byPath(idColumn: id.name, pathColumn: path.name, referenceColumn: ref.name))
                    used.insert(t.name)
                    break
                }
                if let k = t.columns.first(where: { TableCanonical.normalize($0.name) == n + "id" }) {
                    plans[i].document = DocumentTarget(table: t, keyColumn: k.name, bytesColumn: b.name, place: .beside)
                    used.insert(t.name)
                    break
                }
            }
            if plans[i].document == nil {
                throw StorageError("the target database keeps no document bytes for \(p.source.name) (no bytea column beside its rows)")
            }
        }
        return plans
    }

    func run() async throws -> [TableResult] {
        let plans = try await plans()
        var progress = try await target.importBegin(source: sourceID, tables: plans.map(\.target) + plans.compactMap { $0.document?.table })
        var batches = 0, rowsThisRun = 0
        var copied: [String: Int] = [:]
        for plan in plans {
            var p = progress[plan.source.name] ?? PostgresImportProgress(lastKey: nil, copied: 0, finished: false)
            while !p.finished {
                if let stop = stopAfterBatches, batches >= stop { throw Stopped(batches: batches, rows: rowsThisRun) }
                let rows = try await source.exportRows(plan.source, afterKey: p.lastKey, offset: p.copied, limit: batchSize)
                var targetColumns = plan.targetColumns
                var targetRows = rows
                var beside: PostgresImportRows?
                var documents: PostgresImportDocuments?
                if let doc = plan.document, let pathIndex = plan.pathColumn, let keyIndex = plan.keyIndex {
                    let docs = rows.map { Self.documentBytes($0[pathIndex]) }
                    switch doc.place {
                    case .inRow:
                        targetColumns.append(doc.bytesColumn)
                        targetRows = zip(rows, docs).map { $0 + [$1.map { TableValue.blob($0) } ?? .null] }
                    case .beside:
                        let pairs = zip(rows, docs).compactMap { r, d in d.map { [r[keyIndex], TableValue.blob($0)] } }
                        beside = PostgresImportRows(table: doc.table, columns: [doc.keyColumn, doc.bytesColumn], rows: pairs)
                    case .byPath(let idColumn, let pathColumn, let referenceColumn):
                        var files: [String: [UInt8]] = [:]
                        for (r, d) in zip(rows, docs) { if let d, case .text(let path) = r[pathIndex] { files[path] = d } }
                        targetColumns.append(referenceColumn)
                        targetRows = zip(rows, docs).map { $0 + [$1 == nil ? .null : $0[pathIndex]] }
                        documents = PostgresImportDocuments(table: doc.table, idColumn: idColumn, pathColumn: pathColumn,
                                                            bytesColumn: doc.bytesColumn, referenceColumn: referenceColumn, files: files)
                    }
                }
                var lastKey = p.lastKey
                if let k = plan.keyIndex, let last = rows.last, case .integer(let id) = last[k] { lastKey = id }
                let finished = rows.count < batchSize
                try await target.importBatch(source: sourceID, table: plan.target, columns: targetColumns, rows: targetRows,
                                             beside: beside, documents: documents, sourceTable: plan.source.name, lastKey: lastKey,
                                             copied: p.copied + rows.count, finished: finished)
                p = PostgresImportProgress(lastKey: lastKey, copied: p.copied + rows.count, finished: finished)
                copied[plan.source.name, default: 0] += rows.count
                rowsThisRun += rows.count
                batches += 1
            }
            progress[plan.source.name] = p
        }
        for plan in plans { try await target.importSetSequences(plan.target) }
        for doc in plans.compactMap(\.document) where !doc.inRow { try await target.importSetSequences(doc.table) }
        try await target.importFinished(source: sourceID)

        var results: [TableResult] = []
        for plan in plans {
            var r = try await verify(plan)
            r.copied = copied[plan.source.name] ?? 0
            results.append(r)
        }
        return results
    }

    /// The bytes of the file a path column names; nil when gone (retention took it, or it never existed).
    static func documentBytes(_ path: TableValue) -> [UInt8]? {
        guard case .text(let p) = path, !p.isEmpty else { return nil }
        return FileManager.default.contents(atPath: p).map { [UInt8]($0) }
    }

    /// Counts and checksums of the rows (source column order and kinds) and of the documents, on both sides.
    func verify(_ plan: Plan) async throws -> TableResult {
        var r = TableResult(table: plan.source.name)
        r.documentColumn = plan.document?.bytesColumn
        let kinds = plan.source.columns.map(\.kind)
        let orderBy = plan.source.keyColumns.compactMap { k in plan.source.columns.firstIndex { $0.name == k }.map { plan.targetColumns[$0] } }

        var sourceSum = TableChecksum(), sourceDocs = TableChecksum()
        var lastKey: Int64?, offset = 0
        while true {
            let rows = try await source.exportRows(plan.source, afterKey: lastKey, offset: offset, limit: 2000)
            for row in rows {
                sourceSum.add(row)
                if let pathIndex = plan.pathColumn, let k = plan.keyIndex, let bytes = Self.documentBytes(row[pathIndex]) {
                    sourceDocs.add([row[k], .blob(bytes)])
                }
            }
            offset += rows.count
            if let k = plan.keyIndex, let last = rows.last, case .integer(let id) = last[k] { lastKey = id }
            if rows.count < 2000 { break }
        }
        r.sourceRows = sourceSum.rows
        r.sourceChecksum = sourceSum.hex
        if plan.document != nil {
            r.sourceDocuments = sourceDocs.rows
            r.sourceDocumentChecksum = sourceDocs.hex
        }

        var targetSum = TableChecksum()
        lastKey = nil; offset = 0
        let integerKey = plan.keyIndex != nil
        while true {
            let rows = try await target.importRows(plan.target, columns: plan.targetColumns, orderBy: orderBy,
                                                   afterKey: integerKey ? (lastKey ?? Int64.min) : nil, offset: offset, limit: 2000)
            for row in rows { targetSum.add(zip(row, kinds).map { TableCanonical.coerce($0, to: $1) }) }
            offset += rows.count
            if let k = plan.keyIndex, let last = rows.last, case .integer(let id) = last[k] { lastKey = id }
            if rows.count < 2000 { break }
        }
        r.targetRows = targetSum.rows
        r.targetChecksum = targetSum.hex

        if let doc = plan.document {
            var targetDocs = TableChecksum()
            var last: Int64 = Int64.min
            while true {
                var pairs: [(Int64, [UInt8]?)] = []
                if case .byPath(let idColumn, let pathColumn, let referenceColumn) = doc.place {
                    let d = PostgresImportDocuments(table: doc.table, idColumn: idColumn, pathColumn: pathColumn, bytesColumn: doc.bytesColumn,
                                                    referenceColumn: referenceColumn, files: [:])
                    pairs = try await target.importReferencedDocuments(plan.target, keyColumn: doc.keyColumn, documents: d, afterKey: last, limit: 500)
                } else {
                    let rows = try await target.importRows(doc.table, columns: [doc.keyColumn, doc.bytesColumn], orderBy: [doc.keyColumn],
                                                           afterKey: last, offset: 0, limit: 500)
                    pairs = rows.compactMap { row in
                        guard case .integer(let k) = TableCanonical.coerce(row[0], to: .integer) else { return nil }
                        if case .blob(let b) = TableCanonical.coerce(row[1], to: .blob) { return (k, b) }
                        return (k, nil)
                    }
                }
                for (k, bytes) in pairs { if let bytes { targetDocs.add([.integer(k), .blob(bytes)]) } }
                if let l = pairs.last { last = l.0 }
                if pairs.count < 500 { break }
            }
            r.targetDocuments = targetDocs.rows
            r.targetDocumentChecksum = targetDocs.hex
        }
        return r
    }
}

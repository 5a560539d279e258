import Foundation
import Testing
import FrameCore
import FrameIO
import Pipeline
import Simulation

private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
private let outputsDoc = repository.appendingPathComponent("docs/outputs.md")
private let headerSnapshots = repository.appendingPathComponent("Tests/Snapshots/output-headers")
/// Set to 1 to rewrite the snapshots and the docs' generated column tables from the code.
private let updating = ProcessInfo.processInfo.environment["HEATFRONT_UPDATE_SNAPSHOTS"] == "1"
private let regenerate = "to accept the change, run HEATFRONT_UPDATE_SNAPSHOTS=1 swift test -c release --filter OutputReferenceTests and commit the result"

/// The output reference (docs/outputs.md) against the code: its column tables are the ones the
/// schema renders, every key of a run's summary.json is in it, and every table's header is the
/// one in the snapshots.
@Suite(.serialized) struct OutputReferenceTests {
    /// The column tables docs/outputs.md prints, by the name of their marker.
    static let tables: [(String, String)] = [
        ("frames.csv", FramesColumn.markdownTable), ("steps.csv", StepsColumn.markdownTable),
        ("columns/step_<k>.csv", SitesColumn.markdownTable), ("profiles/step_<k>.csv", ProfileColumn.markdownTable),
        ("runs.csv", BatchRunsColumn.markdownTable),
    ]

    /// A small simulated run (boundary front, 256 px, 5 frames per hold), analysed once, and a
    /// batch folder whose `runs.csv` has one failed run.
    static let output: (run: URL, batch: URL) = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-reference-\(getpid())")
        try? FileManager.default.removeItem(at: root)
        var o = SimulationOptions(preset: .boundaryFront, seed: 3, size: 256)
        o.framesPerStep = 5
        let runDir = root.appendingPathComponent("run"), out = root.appendingPathComponent("out")
        try! HeatingRunSimulator(o).write(to: runDir)
        _ = try! RunPipeline.run(runDir: runDir, outDir: out, options: RunOptions(),
                                 progress: ProgressReporter(style: .quiet), cancel: Cancellation())
        let batch = root.appendingPathComponent("batch")
        try! FileManager.default.createDirectory(at: batch, withIntermediateDirectories: true)
        try! BatchOutputs.write([.init(runDir: "missing", name: "missing", error: "no frames")], outDir: batch)
        return (out, batch)
    }()

    /// The text between `<!-- columns: NAME -->` and `<!-- end columns -->`.
    static func block(_ name: String, in doc: String) -> Range<String.Index>? {
        guard let start = doc.range(of: "<!-- columns: \(name) -->\n"),
              let end = doc.range(of: "<!-- end columns -->", range: start.upperBound..<doc.endIndex) else { return nil }
        return start.upperBound..<end.lowerBound
    }

    @Test func docsColumnTablesAreTheSchemas() throws {
        var doc = try String(contentsOf: outputsDoc, encoding: .utf8)
        for (name, table) in Self.tables {
            guard let range = Self.block(name, in: doc) else {
                Issue.record("docs/outputs.md has no `<!-- columns: \(name) -->` … `<!-- end columns -->` block")
                continue
            }
            if updating { doc.replaceSubrange(range, with: table); continue }
            let written = String(doc[range])
            #expect(written == table, "docs/outputs.md, \(name): the column table differs from the schema in Sources/FrameCore/RunOutputColumns.swift:\n\(Self.diff(expected: table, actual: written))\n\(regenerate)")
        }
        if updating { try doc.write(to: outputsDoc, atomically: true, encoding: .utf8) }
    }

    /// Every column has a unique name of the tables' style and a one-line meaning that a
    /// Markdown table can hold.
    @Test func everyColumnIsDeclaredWithAMeaning() {
        func check<C: TableColumn>(_: C.Type) -> [String] {
            var problems: [String] = []
            if Set(C.header).count != C.header.count { problems.append("\(C.self): repeated column names") }
            for c in C.allCases {
                if c.name.isEmpty || c.name.contains(where: { !($0.isLetter || $0.isNumber || $0 == "_") }) {
                    problems.append("\(C.self).\(c): name '\(c.name)' is not a plain identifier")
                }
                if c.spec.meaning.isEmpty || c.spec.meaning.contains(where: { $0 == "|" || $0.isNewline }) {
                    problems.append("\(C.self).\(c): meaning is empty or holds '|' or a line break")
                }
            }
            return problems
        }
        let problems = check(FramesColumn.self) + check(StepsColumn.self) + check(SitesColumn.self)
            + check(ProfileColumn.self) + check(BatchRunsColumn.self)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func everySummaryKeyIsDocumented() throws {
        let doc = try String(contentsOf: outputsDoc, encoding: .utf8)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: Self.output.run.appendingPathComponent("summary.json")))
        let paths = Self.keyPaths(json, prefix: "")
        #expect(paths.count > 50)
        let undocumented = paths.filter { path in
            // `timings_s.<stage>`: a key per stage, documented once.
            let parent = path.split(separator: ".").dropLast().joined(separator: ".")
            return !doc.contains("`\(path)`") && !(!parent.isEmpty && doc.contains("`\(parent).<"))
        }
        #expect(undocumented.isEmpty, "summary.json keys missing from docs/outputs.md (write each as `path` in its summary.json table): \(undocumented)")
    }

    /// Every key path of a JSON value: `a.b` for nested objects, `a[].b` inside arrays.
    static func keyPaths(_ value: Any, prefix: String) -> [String] {
        if let object = value as? [String: Any] {
            return object.keys.sorted().flatMap { key -> [String] in
                let path = prefix.isEmpty ? key : "\(prefix).\(key)"
                return [path] + keyPaths(object[key]!, prefix: path)
            }
        }
        if let array = value as? [Any] {
            return Array(Set(array.flatMap { keyPaths($0, prefix: prefix + "[]") })).sorted()
        }
        return []
    }

    @Test func outputHeadersMatchTheirSnapshots() throws {
        let files: [(snapshot: String, url: URL)] = [
            ("frames.csv", Self.output.run.appendingPathComponent("frames.csv")),
            ("steps.csv", Self.output.run.appendingPathComponent("steps.csv")),
            ("columns_step.csv", Self.output.run.appendingPathComponent("columns/step_0.csv")),
            ("profiles_step.csv", Self.output.run.appendingPathComponent("profiles/step_0.csv")),
            ("runs.csv", Self.output.batch.appendingPathComponent("runs.csv")),
        ]
        for (name, url) in files {
            let header = String(try String(contentsOf: url, encoding: .utf8).split(separator: "\n").first ?? "") + "\n"
            let snapshot = headerSnapshots.appendingPathComponent(name)
            if updating {
                try FileManager.default.createDirectory(at: headerSnapshots, withIntermediateDirectories: true)
                try header.write(to: snapshot, atomically: true, encoding: .utf8)
                continue
            }
            let expected = (try? String(contentsOf: snapshot, encoding: .utf8)) ?? ""
            #expect(header == expected, "\(url.lastPathComponent) header differs from Tests/Snapshots/output-headers/\(name):\n\(Self.diff(expected: expected, actual: header, separator: ","))\n\(regenerate)")
        }
    }

    /// What `actual` lacks and adds against `expected`, line by line (or field by field).
    static func diff(expected: String, actual: String, separator: Character = "\n") -> String {
        let e = expected.split(separator: separator).map { $0.trimmingCharacters(in: .newlines) }
        let a = actual.split(separator: separator).map { $0.trimmingCharacters(in: .newlines) }
        var lines = e.filter { !a.contains($0) }.map { "- \($0)" } + a.filter { !e.contains($0) }.map { "+ \($0)" }
        if lines.isEmpty { lines = ["(same \(separator == "," ? "columns" : "lines"), in another order)"] }
        return lines.joined(separator: "\n")
    }
}

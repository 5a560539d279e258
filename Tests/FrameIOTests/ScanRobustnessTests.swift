import Foundation
import Testing
import FrameCore
import FrameIO
import RunSettings

/// The run-folder scan under hostile or surprising input: special files, names and paths the
/// system cannot hand over as text, frames of other sizes or without times, stacks that only
/// claim frames, and heating logs whose clock is not the frames'.
@Suite("Run-folder scan robustness")
struct ScanRobustnessTests {
    /// Runs `body` on another thread and fails (instead of hanging the suite) when it has not
    /// returned after `seconds`; `unblock` is then called to release it.
    static func finishes(within seconds: Double, unblock: () -> Void, _ body: @escaping @Sendable () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        Thread.detachNewThread { body(); done.signal() }
        if done.wait(timeout: .now() + seconds) == .success { return true }
        unblock()
        return false
    }

    @Test("a named pipe in the run folder is skipped at once, and no reader or parser opens one")
    func namedPipes() throws {
        let run = try FakeRun(["a.tif": .frames(1)])
        defer { run.remove() }
        let fifo = run.url("sub/pipe.tif")
        try FileManager.default.createDirectory(at: fifo.deletingLastPathComponent(), withIntermediateDirectories: true)
        #expect(mkfifo(fifo.path, 0o644) == 0)
        let box = ResultBox()
        let ok = Self.finishes(within: 20, unblock: { Self.release(fifo) }) {
            box.table = try? RunFolder.scan(run.dir, config: RunConfig())
            box.openError = (try? FrameFiles.open(fifo)) == nil
            box.logError = (try? HeatingLog.load(fifo)) == nil
            box.configError = (try? RunConfig.load(fifo)) == nil
        }
        #expect(ok, "reading a named pipe blocked")
        let t = try #require(box.table)
        #expect(t.records.map(\.file) == ["a.tif"])
        #expect(t.skipped == [SkippedPath(path: "sub/pipe.tif", reason: "not a regular file (named pipe)")])
        #expect(t.warnings.contains("skipped sub/pipe.tif: not a regular file (named pipe)"))
        #expect(box.openError && box.logError && box.configError)
    }

    /// Opens a pipe for writing and closes it, so a reader blocked in `open()` returns.
    static func release(_ fifo: URL) {
        let fd = open(fifo.path, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
    }

    final class ResultBox: @unchecked Sendable {
        var table: FrameTable?
        var openError = false, logError = false, configError = false
    }

    @Test("names that are not UTF-8, dangling links, link loops and over-long paths are named with their reason")
    func skippedPathsAreNamed() throws {
        let run = try FakeRun(["a.tif": .frames(1), "deep/b.tif": .frames(1)])
        defer { Self.removeTree(run.dir) }
        // A frame whose name is Latin-1 "é" (0xE9), not UTF-8.
        let bytes: [UInt8] = Array(run.dir.path.utf8) + Array("/caf".utf8) + [0xE9] + Array(".tif".utf8) + [0]
        let fd = bytes.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_CREAT | O_WRONLY, 0o644) } }
        #expect(fd >= 0)
        close(fd)
        try FileManager.default.createSymbolicLink(atPath: run.url("gone.tif").path, withDestinationPath: run.url("nowhere.tif").path)
        try FileManager.default.createSymbolicLink(atPath: run.url("self.tif").path, withDestinationPath: run.url("self.tif").path)
        try FileManager.default.createSymbolicLink(atPath: run.url("deep/up").path, withDestinationPath: run.dir.path)
        let long = try Self.makeDeepFolder(in: run.dir, minimumLength: Int(PATH_MAX) + 100)
        let t = try RunFolder.scan(run.dir, config: RunConfig(), open: run.open)
        #expect(t.records.map(\.file) == ["a.tif", "deep/b.tif"])
        let reasons = Dictionary(t.skipped.map { ($0.path, $0.reason) }, uniquingKeysWith: { a, _ in a })
        #expect(reasons["caf\\xE9.tif"]?.contains("not UTF-8") == true)
        #expect(reasons["gone.tif"] == "dangling symbolic link")
        #expect(reasons["self.tif"] == "symbolic link loop")
        #expect(reasons["deep/up"]?.contains("symbolic link loop") == true)
        #expect(t.skipped.contains { $0.path.hasPrefix(long) && $0.reason.contains("longer than") })
        #expect(t.warnings.contains { $0.hasPrefix("skipped gone.tif") })
    }

    /// `rm -rf`, which also removes paths longer than `PATH_MAX`.
    static func removeTree(_ dir: URL) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/rm")
        p.arguments = ["-rf", dir.path]
        try? p.run()
        p.waitUntilExit()
    }

    /// A chain of folders whose absolute path is longer than `minimumLength` bytes, made with
    /// `mkdirat` (path-based calls refuse such paths); returns the first folder's name.
    static func makeDeepFolder(in dir: URL, minimumLength: Int) throws -> String {
        let part = String(repeating: "d", count: 200)
        var fd = open(dir.path, O_RDONLY | O_DIRECTORY)
        var length = dir.path.utf8.count
        while length < minimumLength {
            #expect(mkdirat(fd, part, 0o755) == 0)
            let next = openat(fd, part, O_RDONLY | O_DIRECTORY)
            close(fd)
            fd = next
            length += part.count + 1
        }
        let file = openat(fd, "frame.tif", O_CREAT | O_WRONLY, 0o644)
        close(file)
        close(fd)
        return part
    }

    @Test("an unreadable sub-folder is named (as an ordinary user; root reads every folder)")
    func unreadableFolder() throws {
        let run = try FakeRun(["a.tif": .frames(1), "locked/b.tif": .frames(1)])
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: run.url("locked").path); run.remove() }
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: run.url("locked").path)
        let t = try RunFolder.scan(run.dir, config: RunConfig(), open: run.open)
        if geteuid() == 0 {
            #expect(t.records.count == 2)
        } else {
            #expect(t.records.map(\.file) == ["a.tif"])
            #expect(t.skipped.first { $0.path == "locked" }?.reason.contains("permission denied") == true)
        }
    }

    /// The `heatfront` executable built beside the test bundle.
    static let heatfront = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        .appendingPathComponent("heatfront")

    /// Runs `command` (as root, or as `nobody` through setpriv): (exit status, standard output).
    static func run(_ command: [String], asNobody: Bool) throws -> (status: Int32, stdout: Data) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: asNobody ? "/usr/bin/setpriv" : command[0])
        p.arguments = asNobody ? ["--reuid=65534", "--regid=65534", "--clear-groups", "--"] + command : Array(command.dropFirst())
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, data)
    }

    /// Whether this process can run `heatfront` as the ordinary user `nobody` (uid 65534): it
    /// runs as root, setpriv is installed, and `nobody` can reach and run the executable.
    static let canRunAsNobody: Bool = {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
              let pw = getpwnam("nobody"), pw.pointee.pw_uid == 65534,
              FileManager.default.isExecutableFile(atPath: heatfront.path) else { return false }
        return (try? run([heatfront.path, "--help"], asNobody: true).status) == 0
    }()

    /// `heatfront inspect` on a simulated run as the ordinary user `nobody`, one of whose
    /// temperature folders only root can read: the folder is named under `skipped` with
    /// "permission denied" and its frames are missing from the table, while root, which reads
    /// every folder, sees them all.
    @Test("an unreadable sub-folder is named when run as an ordinary user (nobody, through setpriv)",
          .enabled(if: canRunAsNobody, "needs root, /usr/bin/setpriv, the user nobody (65534) and heatfront built beside the tests"))
    func unreadableFolderAsOrdinaryUser() throws {
        let scratch = ScratchFolder("nobody")
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: scratch.url.path)
        let runDir = scratch.file("run")
        let made = try Self.run([Self.heatfront.path, "simulate", "--out", runDir.path, "--size", "32", "--frames-per-step", "2", "--seed", "3"], asNobody: false)
        try #require(made.status == 0)
        let folders = try FileManager.default.contentsOfDirectory(atPath: runDir.path).filter { name in
            var dir: ObjCBool = false
            return FileManager.default.fileExists(atPath: runDir.appendingPathComponent(name).path, isDirectory: &dir) && dir.boolValue
        }.sorted()
        let locked = try #require(folders.dropFirst().first, "the simulated run has fewer than two sub-folders: \(folders)")
        let lockedURL = runDir.appendingPathComponent(locked)
        let lockedFrames = try FileManager.default.contentsOfDirectory(atPath: lockedURL.path).count
        try FileManager.default.setAttributes([.posixPermissions: 0o000], ofItemAtPath: lockedURL.path)
        defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: lockedURL.path) }

        struct Table: Decodable { let n_frames: Int; let skipped: [Skip]; struct Skip: Decodable { let path: String; let reason: String } }
        let asRoot = try Self.run([Self.heatfront.path, "inspect", runDir.path], asNobody: false)
        let asUser = try Self.run([Self.heatfront.path, "inspect", runDir.path], asNobody: true)
        #expect(asRoot.status == 0 && asUser.status == 0)
        let all = try JSONDecoder().decode(Table.self, from: asRoot.stdout)
        let seen = try JSONDecoder().decode(Table.self, from: asUser.stdout)
        #expect(all.skipped.isEmpty)
        #expect(lockedFrames > 0 && seen.n_frames == all.n_frames - lockedFrames)
        let skip = seen.skipped.first { $0.path == locked }
        #expect(skip?.reason.contains("permission denied") == true, "\(seen.skipped)")
    }

    @Test("a stray file of another size without a time leaves the run on its metadata times")
    func strayFileKeepsTheClock() throws {
        var files: [String: FakeFile] = [:]
        for i in 0..<8 { files["500C/f_\(i).tif"] = .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(Double(i) * 3)) } }
        files["500C/stray.tif"] = .frames(1, width: 17, height: 17)
        let run = try FakeRun(files)
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.timeSource == "frame_metadata")
        #expect(t.records.filter { $0.status.isOK }.map(\.timeS) == (0..<8).map { Double($0) * 3 })
        #expect(t.records.first { $0.file.hasSuffix("stray.tif") }?.status == .rejected("size"))
        #expect(t.warnings.contains { $0.contains("500C/stray.tif: rejected:size (17×17)") })
    }

    @Test("a frame without a time stamp gets one from its neighbours, with a warning naming it")
    func missingTimeIsInterpolated() throws {
        var files: [String: FakeFile] = [:]
        for i in 0..<6 where i != 3 { files["f_\(i).tif"] = .frames(1) { _ in FrameMetadata(acquisitionTime: t0.addingTimeInterval(Double(i) * 10)) } }
        files["f_3.tif"] = .frames(1)
        files["f_6.tif"] = .frames(1)
        let run = try FakeRun(files)
        defer { run.remove() }
        let t = try run.scan()
        #expect(t.timeSource == "frame_metadata")
        #expect(t.records.map(\.file) == (0...6).map { "f_\($0).tif" })
        #expect(t.records.map(\.timeS) == [0, 10, 20, 30, 40, 50, 60])
        #expect(t.warnings.contains { $0.contains("2 frame(s) carry no acquisition time (f_3.tif, f_6.tif)") })
    }

    @Test("the frame-size vote counts frames that are there: a blank claimed stack does not outvote real frames")
    func sizeVoteByRealFrames() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-vote-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var rng = SystemRandomNumberGenerator()
        func noise(_ n: Int) -> Image { Image(width: n, height: n, pixels: (0..<(n * n)).map { _ in Float.random(in: 0..<100, using: &rng) }) }
        for i in 0..<5 { try TIFFWriter.write([Frame(image: noise(32))], as: .uint16, to: dir.appendingPathComponent("f_\(i).tif")) }
        let blank = (0..<40).map { _ in Frame(image: Image(width: 16, height: 16, fill: 0)) }
        try TIFFWriter.write(blank, as: .uint16, to: dir.appendingPathComponent("claimed.tif"))
        let t = try RunFolder.scan(dir, config: RunConfig())
        #expect(t.frameWidth == 32 && t.okIndices.count == 5)
        // A real stack still outvotes a few stray files.
        try TIFFWriter.write((0..<12).map { _ in Frame(image: noise(24)) }, as: .uint16, to: dir.appendingPathComponent("stack.tif"))
        let t2 = try RunFolder.scan(dir, config: RunConfig())
        #expect(t2.frameWidth == 24 && t2.okIndices.count == 12)
    }

    @Test("a single stack file is a run; the config beside it is read")
    func singleStackFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("heatfront-stack-\(UUID())")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let frames = (0..<4).map { k in Frame(image: Image(width: 16, height: 16, fill: Float(k)),
                                              metadata: FrameMetadata(acquisitionTime: t0.addingTimeInterval(Double(k) * 2))) }
        let stack = dir.appendingPathComponent("run_175C.tif")
        try TIFFWriter.write(frames, as: .uint16, to: stack)
        try TIFFWriter.write([Frame(image: Image(width: 8, height: 8, fill: 1))], as: .uint16, to: dir.appendingPathComponent("other.tif"))
        try "pixel_size_nm: 0.02\n".write(to: dir.appendingPathComponent("heatfront.yaml"), atomically: true, encoding: .utf8)
        let config = try RunFolder.loadConfig(runDir: stack, configURL: nil)
        #expect(config.pixelSizeNm == 0.02)
        let t = try RunFolder.scan(stack, config: config)
        #expect(t.records.map(\.file) == Array(repeating: "run_175C.tif", count: 4))
        #expect(t.records.map(\.page) == [0, 1, 2, 3])
        #expect(t.records.map(\.temperatureC) == [175, 175, 175, 175])
        #expect(t.ignored.isEmpty)
        #expect(throws: FrameIOError.self) { try RunFolder.scan(dir.appendingPathComponent("notes.txt"), config: RunConfig()) }
    }

    @Test("signal: picks the detector in files with several; a name no file has is a config error")
    func signalKey() throws {
        let run = try FakeRun(["a.emd": .frames(2), "b.emd": .frames(2)])
        defer { run.remove() }
        let open: (URL) throws -> any FrameFileReader = { url in try MultiSignalReader(url: url) }
        var c = RunConfig()
        c.signal = "abf"
        let t = try RunFolder.scan(run.dir, config: c, open: open)
        #expect(t.records.map(\.signal) == [1, 1, 1, 1])
        c.signal = "2"
        #expect(try RunFolder.scan(run.dir, config: c, open: open).records.map(\.signal) == [2, 2, 2, 2])
        #expect(try RunFolder.scan(run.dir, config: RunConfig(), open: open).records.map(\.signal) == [0, 0, 0, 0])
        c.signal = "iDPC"
        let e = try #require(throws: RunConfigError.self) { try RunFolder.scan(run.dir, config: c, open: open) }
        #expect(e.key == "signal" && e.description.contains("'ABF', 'DF4', 'HAADF'"))
    }

    /// Three 8×8 signals named as Velox names its detectors.
    final class MultiSignalReader: FrameFileReader {
        let url: URL
        init(url: URL) throws { self.url = url }
        var format: FrameFormat { .emd }
        var signals: [SignalInfo] {
            ["HAADF", "ABF", "DF4"].enumerated().map { SignalInfo(index: $0.offset, name: $0.element, frameCount: 2, height: 8, width: 8, sampleType: .uint16) }
        }
        var fileMetadata: [String: String] { [:] }
        func plane(signal: Int, frame: Int) throws -> PixelPlane {
            PixelPlane(width: 8, height: 8, values: .float32((0..<64).map { Float($0 % 7 + signal) }))
        }
        func metadata(signal: Int, frame: Int) throws -> FrameMetadata { FrameMetadata() }
    }
}

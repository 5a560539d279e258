import Foundation
import Testing
import CHDF5
import CHDF5Guard
import FrameIO

/// The repository's root (for Fuzz/known and Fuzz/seeds).
private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
/// The `heatfront` executable built beside the test bundle (`swift test` builds every product).
private let heatfront = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("heatfront")

/// HeatFront's defences around the HDF5 C library (CHDF5Guard): the check of global heap
/// objects, the repair of HDF5's attribute table and the cap on variable-length values. The
/// files in Fuzz/known make HDF5 1.10.8 crash, read through stray pointers or ask for
/// impossible memory; each must end in one error line naming the file.
@Suite struct HDF5GuardTests {
    static let known = ["hdf5-attribute-close-segv.hspy", "hdf5-attribute-overread.hspy", "hdf5-global-heap-index-segv.hspy",
                        "hdf5-metadata-size-berkeley.emd", "hdf5-metadata-size-velox.emd", "hdf5-vlen-length-oom.hspy",
                        "hdf5-global-heap-large-collection-segv.emd", "hdf5-enum-base-size-segv.hspy",
                        "hdf5-attribute-enum-values-segv.hspy", "hdf5-berkeley-integer-precision-zero-bus.emd",
                        "hdf5-enum-size-copy-overread.hspy", "hdf5-driver-info-size-oom.emd",
                        "hdf5-local-heap-free-list-loop-oom.emd", "hdf5-vlen-size-overread.hspy",
                        "hdf5-chunk-short-inflate-overread.hspy", "hdf5-chunk-short-stored-overread.hspy",
                        "hdf5-berkeley-group-loop-slow.emd", "hdf5-velox-metadata-type-size-oom.emd"]

    /// A HyperSpy stack whose root attribute `file_format` ("HyperSpy", a variable-length
    /// string) refers to object `index` of its global heap collection instead of its own.
    static func writeDamagedHeapReference(_ url: URL, index: UInt32) throws {
        try HyperSpyTests.writeStack(url, type: chdf5_std_i16le(), values: HyperSpyTests.ramp)
        var bytes = [UInt8](try Data(contentsOf: url))
        let gcol = try #require(find(Array("GCOL".utf8), in: bytes))
        // The attribute's data: sequence length 8, the collection's address, the object index.
        let descriptor = [8, 0, 0, 0] + withUnsafeBytes(of: UInt64(gcol).littleEndian, Array.init)
        let at = try #require(find(descriptor, in: bytes))
        #expect(bytes[(at + 12)..<(at + 16)] == [1, 0, 0, 0])      // "HyperSpy" is the first object written
        bytes.replaceSubrange((at + 12)..<(at + 16), with: withUnsafeBytes(of: index.littleEndian, Array.init))
        try Data(bytes).write(to: url)
    }

    /// A HyperSpy stack whose root attribute `file_format` ("HyperSpy", 8 bytes in the heap)
    /// claims `length` characters.
    static func writeDamagedStringLength(_ url: URL, length: UInt32) throws {
        try HyperSpyTests.writeStack(url, type: chdf5_std_i16le(), values: HyperSpyTests.ramp)
        var bytes = [UInt8](try Data(contentsOf: url))
        let gcol = try #require(find(Array("GCOL".utf8), in: bytes))
        let descriptor = [8, 0, 0, 0] + withUnsafeBytes(of: UInt64(gcol).littleEndian, Array.init) + [1, 0, 0, 0]
        let at = try #require(find(descriptor, in: bytes))
        bytes.replaceSubrange(at..<(at + 4), with: withUnsafeBytes(of: length.littleEndian, Array.init))
        try Data(bytes).write(to: url)
    }

    /// A HyperSpy stack with one attribute message changed: at the first match of `pattern`,
    /// the 4 bytes at `offset` become `value` (little-endian).
    static func writeDamagedAttribute(_ url: URL, pattern: [UInt8], offset: Int, value: UInt32) throws {
        try HyperSpyTests.writeStack(url, type: chdf5_std_i16le(), values: HyperSpyTests.ramp)
        var bytes = [UInt8](try Data(contentsOf: url))
        let at = try #require(find(pattern, in: bytes)) + offset
        bytes.replaceSubrange(at..<(at + 4), with: withUnsafeBytes(of: value.littleEndian, Array.init))
        try Data(bytes).write(to: url)
    }

    /// The base type of h5py's bool (a signed 1-byte integer, offset 0, precision 8), then the
    /// enumeration's first name.
    static let boolEnumBase: [UInt8] = [0x10, 0x08, 0, 0, 1, 0, 0, 0, 0, 0, 8, 0] + Array("FALSE".utf8)
    /// A signed little-endian 64-bit integer's datatype: class and flags, size 8, offset 0,
    /// precision 64.
    static let int64Type: [UInt8] = [0x10, 0x08, 0, 0, 8, 0, 0, 0, 0, 0, 64, 0]
    /// An IEEE little-endian double's datatype after its class bytes: size 8, offset 0,
    /// precision 64, exponent at 52 of 11 bits, mantissa at 0 of 52 bits, bias 1023.
    static let doubleType: [UInt8] = [8, 0, 0, 0, 0, 0, 64, 0, 52, 11, 0, 52, 0xFF, 3, 0, 0]

    static func find(_ needle: [UInt8], in haystack: [UInt8]) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        return (0...(haystack.count - needle.count)).first { i in haystack[i..<(i + needle.count)].elementsEqual(needle) }
    }

    /// Runs `heatfront ARGUMENTS`: (exit status or -signal, standard error).
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = heatfront
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationReason == .exit ? p.terminationStatus : -p.terminationStatus, message)
    }

    /// The linker bound HDF5's calls of H5HG_read, H5HG_get_obj_size, H5A__compact_build_table
    /// and its block allocator to HeatFront's checked versions in this test runner, as in
    /// `heatfront` and the fuzzer.
    @Test func heapCheckIsActiveInThisProcess() {
        #expect(chdf5_heap_guard_active() == 1)
        #expect(chdf5_message_checks_active() == 1)
    }

    /// A heap index the collection does not hold, read in this process: HDF5 1.10.8 would read
    /// `heap->obj[index]` out of bounds (a crash for a large index, stray bytes for a small
    /// one); the check refuses it and the reader reports the damage.
    @Test(arguments: [UInt32(0x7000), 0x2000_0021])
    func heapIndexNotInItsCollectionIsOneErrorLine(index: UInt32) throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("damaged-heap.hspy")
        try Self.writeDamagedHeapReference(url, index: index)
        let refused = chdf5_heap_guard_refusals()
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
        #expect(e?.file == url.path && e?.kind == .corrupt)
        #expect(e?.detail == "variable-length data refer to object \(index) of the global heap collection at byte \(try Self.gcolOffset(url)), which holds no such object")
        #expect(chdf5_heap_guard_refusals() > refused)
    }

    /// A string that claims 4 GB (its heap object holds 8 bytes), read in this process: HDF5
    /// 1.10.8 allocates and zero-fills the claimed length before reading the object (4.2 GB
    /// and half a minute for a 37 kB file); the cap refuses it and the reader reports it.
    @Test func hugeVariableLengthValueIsOneErrorLine() throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("huge-string.hspy")
        try Self.writeDamagedStringLength(url, length: 0xFF00_0005)
        let refused = chdf5_vlen_refusals()
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
        #expect(e?.file == url.path && e?.kind == .corrupt)
        #expect(e?.detail == "a variable-length value claims 4278194176 bytes, more than the 16 MB allowed for metadata")
        #expect(chdf5_vlen_refusals() > refused)
    }

    /// A string a little longer than its heap object but within the cap is not refused by the
    /// cap (HDF5 reads the object into a larger, zeroed buffer).
    @Test func modestVariableLengthValueIsNotRefusedByTheCap() throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("long-string.hspy")
        try Self.writeDamagedStringLength(url, length: 12)
        let refused = chdf5_vlen_refusals()
        _ = try? FrameFiles.open(url)
        #expect(chdf5_vlen_refusals() == refused)
    }

    /// A HyperSpy file whose `file_format` string is "HyperSpy" and 9000 spaces (a heap object
    /// of 9008 bytes in a collection of its own) but whose stored length says 8: HDF5 1.10.8
    /// sizes its buffer from the length (4096 bytes at least) and copies the object's 9008
    /// bytes into it, a heap overflow; the check refuses the object.
    @Test func heapObjectLargerThanItsStoredLengthIsOneErrorLine() throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("overlong-object.hspy")
        do {
            let w = try HDF5Writer(url)
            defer { w.close() }
            w.string("/", "file_format", "HyperSpy" + String(repeating: " ", count: 9000))
            w.string("/", "file_format_version", "3.3")
        }
        var bytes = [UInt8](try Data(contentsOf: url))
        var collections: [Int] = []
        var from = 0
        while let at = Self.find(Array("GCOL".utf8), in: Array(bytes[from...])) { collections.append(from + at); from += at + 4 }
        let descriptor = try #require(collections.lazy.compactMap { gcol in
            Self.find([0x30, 0x23, 0, 0] + withUnsafeBytes(of: UInt64(gcol).littleEndian, Array.init), in: bytes).map { ($0, gcol) }
        }.first)
        bytes.replaceSubrange(descriptor.0..<(descriptor.0 + 4), with: [8, 0, 0, 0])
        try Data(bytes).write(to: url)
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
        #expect(e?.detail == "variable-length data of 9008 bytes (object 1 of the global heap collection at byte \(descriptor.1)) exceed the length stored with them")
    }

    /// A bool attribute (`navigate`) whose enumeration's base integer claims 524289 bytes:
    /// HDF5 1.10.8 copies the enumeration's values (2 × 524289 bytes) from the attribute
    /// message without checking them against it, reading a megabyte past the object header
    /// (SIGSEGV). The check of attribute messages refuses it before HDF5 decodes it (the
    /// enumeration's 1 byte is not its base's size, which it checks first).
    @Test func enumerationValuesPastTheAttributeMessageAreOneErrorLine() throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("enum-values.hspy")
        try Self.writeDamagedAttribute(url, pattern: Self.boolEnumBase, offset: 4, value: 0x8_0001)
        let refused = chdf5_message_refusals()
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
        #expect(e?.file == url.path && e?.kind == .corrupt)
        #expect(e?.detail == "an attribute's enumeration type is damaged (its size is not its base type's)")
        #expect(chdf5_message_refusals() > refused)
    }

    /// A double attribute (`scale`) whose type claims 200 bytes: HDF5 1.10.8 copies 200 bytes
    /// of data from a message that holds 8, reading past the message (and, at the end of a
    /// header chunk, past HDF5's buffer). The check refuses the message.
    @Test func attributeDataPastItsMessageAreOneErrorLine() throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("long-data.hspy")
        try Self.writeDamagedAttribute(url, pattern: Self.doubleType, offset: 0, value: 200)
        let refused = chdf5_message_refusals()
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
        #expect(e?.file == url.path && e?.kind == .corrupt)
        #expect(e?.detail.hasPrefix("an attribute's data (1 × 200 bytes) run past its attribute message (") == true,
                "\(e?.detail ?? "")")
        #expect(chdf5_message_refusals() > refused)
    }

    /// A bool attribute (`navigate`) whose enumeration claims 4 bytes over its 1-byte base:
    /// HDF5 1.10.8 keeps the values in a buffer sized by the base (2 bytes) and copies them by
    /// the enumeration's size when it copies the type (`H5Aget_type`: 8 bytes, a heap
    /// overread). The check refuses the datatype before HDF5 decodes it.
    @Test func enumerationLargerThanItsBaseIsOneErrorLine() throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("enum-size.hspy")
        try Self.writeDamagedAttribute(url, pattern: Self.boolEnumBase, offset: -4, value: 4)
        let refused = chdf5_message_refusals()
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
        #expect(e?.file == url.path && e?.kind == .corrupt)
        #expect(e?.detail == "an attribute's enumeration type is damaged (its size is not its base type's)")
        #expect(chdf5_message_refusals() > refused)
    }

    /// An integer attribute (`size`) whose precision is 0 bits: HDF5 1.10.8 decodes it, and
    /// converting it to a double indexes the value's bits from precision − 1, 2^61 bytes away
    /// (SIGBUS). The check refuses the datatype before HDF5 decodes it.
    @Test func integerOfPrecisionZeroIsOneErrorLine() throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("precision-zero.hspy")
        try Self.writeDamagedAttribute(url, pattern: Self.int64Type, offset: 8, value: 0)
        let refused = chdf5_message_refusals()
        let e = #expect(throws: FrameIOError.self) { try FrameFiles.open(url) }
        #expect(e?.file == url.path && e?.kind == .corrupt)
        #expect(e?.detail == "an attribute's datatype is damaged (its bits lie outside its size)")
        #expect(chdf5_message_refusals() > refused)
    }

    /// A known crasher opened in this process: `…-berkeley-…` files with the Berkeley EMD
    /// reader (as the fuzz target that found them reads them, whatever layout the damaged
    /// file now shows), the others as their extension says.
    static func open(_ url: URL) throws -> any FrameFileReader {
        url.lastPathComponent.contains("-berkeley-") ? try FrameFiles.open(url, as: .emdBerkeley) : try FrameFiles.open(url)
    }

    static func gcolOffset(_ url: URL) throws -> Int {
        try #require(find(Array("GCOL".utf8), in: [UInt8](try Data(contentsOf: url))))
    }

    /// The same file read with the C API through HeatFront's driver and attribute helper: the
    /// attribute reads as absent and the damage is recorded on the open file.
    @Test func heapCheckRecordsTheDamageOnTheOpenFile() throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("damaged-heap.hspy")
        try Self.writeDamagedHeapReference(url, index: 0x2000_0021)
        let (text, damage) = HDF5Access.serialized { () -> (Int, String) in
            let fapl = H5Pcreate(chdf5_p_file_access())
            defer { H5Pclose(fapl) }
            #expect(chdf5_use_guard_driver(fapl) == 0)
            let f = H5Fopen(url.path, chdf5_f_acc_rdonly(), fapl)
            defer { H5Fclose(f) }
            var buf = [CChar](repeating: 0, count: 256)
            let n = buf.withUnsafeMutableBufferPointer { chdf5_attr_string(f, "file_format", $0.baseAddress, $0.count) }
            var note = [CChar](repeating: 0, count: 512)
            let m = note.withUnsafeMutableBufferPointer { chdf5_guard_damage(f, $0.baseAddress, $0.count) }
            return (n, String(decoding: note.prefix(m).map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        #expect(text == -1)
        #expect(damage.contains("object 536870945 of the global heap collection"))
    }

    /// Every known HDF5 crasher, opened and its first frames read in this process: one error
    /// naming the file. Before CHDF5Guard, hdf5-global-heap-index-segv.hspy crashed the test
    /// runner, and hdf5-attribute-close-segv.hspy and hdf5-vlen-length-oom.hspy (after 4 GB)
    /// opened and read as if intact; hdf5-global-heap-large-collection-segv.emd (a 4352-byte
    /// collection, which HDF5 reads as 4096 bytes and then the rest) got past the driver's
    /// check of the first read and crashed in H5HG_read; hdf5-enum-base-size-segv.hspy (a
    /// boolean attribute whose 1-byte enumeration has a 21315-byte base) crashed in
    /// H5Tget_native_type; hdf5-attribute-enum-values-segv.hspy (an enumeration whose values
    /// run a megabyte past its attribute message) crashed in HDF5's datatype decoder, and
    /// hdf5-berkeley-integer-precision-zero-bus.emd (an integer attribute of precision 0) in HDF5's
    /// conversion of it to a double; hdf5-driver-info-size-oom.emd (a 4 kB file whose driver
    /// information block claims gigabytes) took 19 s and 4.2 GB, zero-filled past the file's end;
    /// hdf5-local-heap-free-list-loop-oom.emd (a group's local heap whose free list loops) took
    /// 4 min and 22 GB, a node per turn of the loop; hdf5-vlen-size-overread.hspy (a
    /// variable-length string attribute whose type states 13 bytes, not 16) was read 3 bytes
    /// past HDF5's copy of its data; hdf5-chunk-short-inflate-overread.hspy, see
    /// `shortDecompressedChunkIsOneErrorLine`; hdf5-chunk-short-stored-overread.hspy (an
    /// uncompressed chunk of 3 × 260 half-floats stored in 32 bytes) was copied 8 bytes past
    /// the stored chunk; hdf5-berkeley-group-loop-slow.emd (groups linked back into the tree)
    /// took 14 s, its groups walked along ever longer paths.
    @Test(arguments: known)
    func knownHDF5FailuresAreOneErrorInProcess(name: String) throws {
        let url = repository.appendingPathComponent("Fuzz/known/" + name)
        let e = #expect(throws: FrameIOError.self) {
            let reader = try Self.open(url)
            for (i, signal) in reader.signals.enumerated() where signal.frameCount > 0 {
                _ = try reader.plane(signal: i, frame: 0)
            }
        }
        #expect(e?.file == url.path)
        #expect(e?.description.contains("\n") == false)
    }

    /// hdf5-velox-metadata-type-size-oom.emd: a Velox `Metadata` dataset (254 × 2, 508 bytes
    /// stored) whose integer type claims 3,439,329,281 bytes per sample. HDF5 sizes its
    /// type-conversion buffer by the stored type, and reading the first frame's metadata took
    /// 2 s and 3.4 GB. Metadata whose samples are not bytes are not read. (The file's second
    /// signal stores its pixels past the end of the file: that is its error.)
    @Test func veloxMetadataOfAHugeTypeIsNotRead() throws {
        let url = repository.appendingPathComponent("Fuzz/known/hdf5-velox-metadata-type-size-oom.emd")
        let before = ReaderLimitsTests.peakRSS()
        #expect(throws: FrameIOError.self) { try EMDReader(url: url) }
        #expect(ReaderLimitsTests.peakRSS() - before < 1 << 30, "peak RSS grew by \((ReaderLimitsTests.peakRSS() - before) >> 20) MB")
    }

    /// A compressed chunk that inflates to 24 bytes where its declared dimensions (3 × 131076
    /// half-floats) hold 786,456: HDF5 1.10 copied the frame out by the dimensions, 8 bytes
    /// past the inflated buffer. The chunk is refused, with its sizes.
    @Test func shortDecompressedChunkIsOneErrorLine() throws {
        let url = repository.appendingPathComponent("Fuzz/known/hdf5-chunk-short-inflate-overread.hspy")
        let before = chdf5_chunk_refusals()
        let e = #expect(throws: FrameIOError.self) {
            let reader = try Self.open(url)
            _ = try reader.plane(signal: 0, frame: 0)
        }
        #expect(e?.detail.contains("a compressed chunk decompresses to 24 bytes, not the 786456 its dimensions hold") == true)
        #expect(chdf5_chunk_refusals() > before)
    }

    /// What each known crasher is refused for: the damage CHDF5Guard found, where it found
    /// some.
    @Test func knownHDF5FailuresNameTheirDamage() throws {
        let expected = [
            "hdf5-attribute-close-segv.hspy": "an object's attribute messages are damaged (HDF5 cannot decode them)",
            "hdf5-global-heap-index-segv.hspy": "variable-length data refer to object 536870945 of the global heap collection at byte 2144, which holds no such object",
            "hdf5-vlen-length-oom.hspy": "a variable-length value claims 4278194176 bytes, more than the 16 MB allowed for metadata",
            "hdf5-global-heap-large-collection-segv.emd": "the global heap collection at byte 2144 is damaged (an object runs past its end)",
            "hdf5-attribute-enum-values-segv.hspy": "an attribute's enumeration type is damaged (its size is not its base type's)",
            "hdf5-attribute-overread.hspy": "an attribute's dataspace runs past its part of the attribute message",
            "hdf5-berkeley-integer-precision-zero-bus.emd": "an attribute's datatype is damaged (its bits lie outside its size)",
            "hdf5-driver-info-size-oom.emd": "HDF5 cannot open the file: a metadata block runs past the end of the file",
            "hdf5-local-heap-free-list-loop-oom.emd": "a local heap's free list is damaged (it loops or runs past the heap)",
            "hdf5-vlen-size-overread.hspy": "an attribute's variable-length type is damaged (its size is not that of its stored form)",
            "hdf5-velox-metadata-type-size-oom.emd": "/Data/Image/9f8e/Data: its 24 bytes lie past the end of the 7531-byte file",
        ]
        for (name, detail) in expected {
            let url = repository.appendingPathComponent("Fuzz/known/" + name)
            let e = #expect(throws: FrameIOError.self) { try Self.open(url) }
            #expect(e?.detail == detail, "\(name)")
        }
    }

    /// `heatfront inspect` on each known crasher, and on the damaged heap reference, in a
    /// child process: exit 1 and one line naming the file, also with glibc filling new and
    /// freed memory with a pattern (MALLOC_PERTURB_), which turns HDF5's use of an
    /// uninitialised pointer into a crash every time. Before CHDF5Guard,
    /// hdf5-global-heap-index-segv.hspy and the damaged reference ended in SIGSEGV, and
    /// hdf5-attribute-close-segv.hspy printed a result (or, with the pattern, SIGSEGV).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: heatfront.path), "heatfront is not built beside the tests"))
    func inspectEndsInOneErrorLineOnEachKnownCrasher() throws {
        let dir = ScratchFolder("hdf5-guard")
        let damaged = dir.file("damaged-heap.hspy")
        try Self.writeDamagedHeapReference(damaged, index: 0x2000_0021)
        let files = Self.known.map { repository.appendingPathComponent("Fuzz/known/" + $0) } + [damaged]
        for file in files {
            for env in [[:], ["MALLOC_PERTURB_": "85"], ["MALLOC_PERTURB_": "165"]] {
                let (status, message) = try Self.run(["inspect", file.path], environment: env)
                #expect(status == 1, "\(file.lastPathComponent) \(env): exit \(status)")
                let lines = message.split(separator: "\n")
                #expect(lines.count == 1 && lines.first?.hasPrefix("heatfront: \(file.path): ") == true,
                        "\(file.lastPathComponent) \(env): \(message)")
            }
        }
    }

    /// `heatfront run` on each known crasher as a single stack file: exit 1 ("nothing
    /// analysed") and one line naming the file, with threads decoding beside HDF5 and the
    /// pattern-filled heap.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: heatfront.path), "heatfront is not built beside the tests"))
    func runEndsInOneErrorLineOnEachKnownCrasher() throws {
        let dir = ScratchFolder("hdf5-guard")
        for file in Self.known.map({ repository.appendingPathComponent("Fuzz/known/" + $0) }) {
            let out = dir.file("out-" + file.lastPathComponent)
            let (status, message) = try Self.run(["run", file.path, "--out", out.path, "--quiet"], environment: ["MALLOC_PERTURB_": "85"])
            #expect(status == 1, "\(file.lastPathComponent): exit \(status)")
            let lines = message.split(separator: "\n")
            #expect(lines.count == 1 && lines.first?.hasPrefix("heatfront: \(file.path): ") == true, "\(file.lastPathComponent): \(message)")
        }
    }

    /// The checks do not refuse valid files: a stack written here and every intact HDF5 seed
    /// opens.
    @Test func validFilesOpen() throws {
        let dir = ScratchFolder("hdf5-guard")
        let url = dir.file("stack.hspy")
        try HyperSpyTests.writeStack(url, type: chdf5_std_i16le(), values: HyperSpyTests.ramp)
        let r = try FrameFiles.open(url)
        #expect(r.signals.first?.frameCount == 3)
        for name in ["stack-v3.hspy", "half-v3.hspy", "image-v2.hdf5"] {
            #expect(throws: Never.self) { try FrameFiles.open(repository.appendingPathComponent("Fuzz/seeds/hspy/" + name)) }
        }
    }
}

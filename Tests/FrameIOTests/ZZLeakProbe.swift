import Foundation
import Testing
import CHDF5
import FrameIO

@Suite struct ZZLeakProbe {
    @Test func probe() throws {
        let dir = URL(fileURLWithPath: "/work/main/Fuzz/.build-corpus/emd-velox")
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil).sorted { $0.path < $1.path }
        let tmp = URL(fileURLWithPath: "/tmp/probe/x.emd")
        var leaky = 0
        for f in files {
            try Data(contentsOf: f).write(to: tmp)
            do {
                let reader = try EMDReader(url: tmp)
                for s in reader.signals.indices {
                    for k in 0..<min(reader.signals[s].frameCount, 16) {
                        _ = try? reader.plane(signal: s, frame: k); _ = try? reader.metadata(signal: s, frame: k)
                    }
                }
            } catch {}
            let n = HDF5Access.serialized { H5Fget_obj_count(hid_t(0x7fffffff & 0) == 0 ? -1 : -1, 0xffff) }
            if n > 0 { leaky += 1; print("LEAK", f.lastPathComponent, n) }
        }
        print("files", files.count, "leaky", leaky)
    }
}

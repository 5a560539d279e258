import Foundation
import FrameIO

extension RunFolder {
    /// The run's config: `configURL` when given (`--config FILE`, must exist), else
    /// `heatfront.yaml` in `runDir` (or beside it, when it is a single stack file) when
    /// present, else the defaults.
    public static func loadConfig(runDir: URL, configURL: URL?) throws -> RunConfig {
        if let configURL { return try RunConfig.load(configURL) }
        var isDir: ObjCBool = true
        let single = FileManager.default.fileExists(atPath: runDir.path, isDirectory: &isDir) && !isDir.boolValue
        let url = (single ? runDir.deletingLastPathComponent() : runDir).appendingPathComponent(configFileName)
        return FileManager.default.fileExists(atPath: url.path) ? try RunConfig.load(url) : RunConfig()
    }

    /// `scan(_:settings:…)` with a run's config: see there.
    public static func scan(_ runPath: URL, config: RunConfig, heatingLog: URL? = nil, exclude: [URL] = [],
                            open: (URL) throws -> any FrameFileReader = FrameFiles.open) throws -> FrameTable {
        try scan(runPath, settings: config.folderSettings, heatingLog: heatingLog, exclude: exclude, open: open)
    }
}

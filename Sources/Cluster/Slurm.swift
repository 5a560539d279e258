import Foundation

/// Why talking to SLURM failed: one line for the terminal.
public struct SlurmError: Error, CustomStringConvertible {
    public var description: String
}

/// The SLURM client commands `heatfront submit` uses: `sbatch` to submit, `squeue` to see
/// which tasks are still queued or running, `scontrol` for a partition's time limit and for
/// how a task ended when it could not say so itself. They read the cluster's configuration
/// the usual way (`SLURM_CONF` or the system's), and `sbatch` its `SBATCH_*` variables.
public enum Slurm {
    /// The full path of a command on `PATH`, or nil.
    static func find(_ tool: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return path.split(separator: ":").map { "\($0)/\(tool)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs a SLURM command; its exit status, standard output and standard error.
    static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        guard let executable = find(tool) else {
            throw SlurmError(description: "\(tool) not found on PATH: SLURM's client commands are needed (on a cluster, often `module load slurm`); --dry-run writes the job scripts without them")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Both pipes drained at once: a full pipe would block the command.
        final class Box: @unchecked Sendable { var data = Data() }
        let errData = Box()
        let group = DispatchGroup()
        let errHandle = err.fileHandleForReading
        DispatchQueue.global().async(group: group) { errData.data = errHandle.readDataToEndOfFile() }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outData, as: UTF8.self), String(decoding: errData.data, as: UTF8.self))
    }

    /// Submits a script after `after` (job ids, all to succeed); the new job's id.
    public static func submit(_ script: URL, after: [String]) throws -> String {
        var arguments = ["--parsable"]
        if !after.isEmpty { arguments += ["--dependency=afterok:" + after.joined(separator: ":"), "--kill-on-invalid-dep=yes"] }
        let r = try run("sbatch", arguments + [script.path])
        let id = r.out.split(separator: "\n").last.map { String($0.split(separator: ";")[0]) } ?? ""
        guard r.status == 0, !id.isEmpty, id.allSatisfy(\.isNumber) else {
            throw SlurmError(description: "sbatch \(script.path) failed: \(oneLine(r.err.isEmpty ? r.out : r.err))")
        }
        return id
    }

    /// The tasks of these jobs still queued or running: `id` (`123` or `123_4`) and state.
    public static func activeTasks(_ jobIDs: [String]) throws -> [(id: String, state: String)] {
        guard !jobIDs.isEmpty else { return [] }
        let r = try run("squeue", ["--noheader", "--array", "--format=%i %T", "--jobs=" + jobIDs.joined(separator: ",")])
        // Jobs that have left the controller's memory: not an error, nothing active.
        if r.status != 0 && r.err.contains("Invalid job id") { return [] }
        guard r.status == 0 else { throw SlurmError(description: "squeue failed: \(oneLine(r.err))") }
        return r.out.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            return f.count == 2 ? (String(f[0]), String(f[1])) : nil
        }
    }

    /// How a job or array task (`123`, `123_4`) ended, while the controller still remembers
    /// it: `TIMEOUT (TimeLimit)`, `OUT_OF_MEMORY`, `CANCELLED (Dependency)`, …; nil when not.
    public static func endState(_ id: String) -> String? {
        guard let r = try? run("scontrol", ["--oneliner", "show", "job", id]), r.status == 0 else { return nil }
        func field(_ name: String) -> String? {
            r.out.split(separator: " ").first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
        }
        guard let state = field("JobState") else { return nil }
        let reason = field("Reason").flatMap { $0 == "None" ? nil : $0 }
        return reason.map { "\(state) (\($0))" } ?? state
    }

    /// The time limit of a partition (the default one when nil), seconds; `.some(nil)` when
    /// unlimited, nil when it cannot be read.
    public static func partitionTimeLimit(_ partition: String?) -> Int?? {
        guard let r = try? run("scontrol", ["--oneliner", "show", "partition"] + (partition.map { [$0] } ?? [])),
              r.status == 0 else { return nil }
        let lines = r.out.split(separator: "\n")
        guard let line = partition == nil ? lines.first(where: { $0.contains("Default=YES") }) : lines.first,
              let field = line.split(separator: " ").first(where: { $0.hasPrefix("MaxTime=") }) else { return nil }
        do { return .some(try SlurmTime.parse(String(field.dropFirst("MaxTime=".count)))) } catch { return nil }
    }

    static func oneLine(_ s: String) -> String {
        s.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: "; ")
    }
}

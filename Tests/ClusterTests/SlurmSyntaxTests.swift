import Testing
import Cluster

/// SLURM's time and memory syntax, both ways.
@Suite struct SlurmSyntaxTests {
    @Test func parsesEveryTimeForm() throws {
        #expect(try SlurmTime.parse("90") == 5400)
        #expect(try SlurmTime.parse("90:30") == 5430)
        #expect(try SlurmTime.parse("2:00:00") == 7200)
        #expect(try SlurmTime.parse("1-12") == 129_600)
        #expect(try SlurmTime.parse("1-12:30") == 131_400)
        #expect(try SlurmTime.parse("2-00:00:05") == 172_805)
        #expect(try SlurmTime.parse("UNLIMITED") == nil)
        #expect(try SlurmTime.parse("infinite") == nil)
        for bad in ["", "1:2:3:4", "-5", "a", "1-2-3", "1:-2"] {
            #expect(throws: SlurmSyntaxError.self) { try SlurmTime.parse(bad) }
        }
    }

    @Test func formatsTimesAsSqueueDoes() {
        #expect(SlurmTime.format(900) == "00:15:00")
        #expect(SlurmTime.format(86_399) == "23:59:59")
        #expect(SlurmTime.format(90_061) == "1-01:01:01")
    }

    @Test func parsesAndFormatsMemory() throws {
        #expect(try SlurmMemory.parse("4000") == 4000)
        #expect(try SlurmMemory.parse("4000M") == 4000)
        #expect(try SlurmMemory.parse("8G") == 8192)
        #expect(try SlurmMemory.parse("1.5g") == 1536)
        #expect(try SlurmMemory.parse("1T") == 1_048_576)
        #expect(try SlurmMemory.parse("2048K") == 2)
        for bad in ["", "G", "-1G", "0", "8X", "eight"] {
            #expect(throws: SlurmSyntaxError.self) { try SlurmMemory.parse(bad) }
        }
        #expect(SlurmMemory.format(1536) == "1536M")
        #expect(SlurmMemory.format(2048) == "2G")
    }
}

import Foundation
import Testing
import FrameIO

@Suite("TemperatureSources")
struct TemperatureSourceTests {
    @Test("folder names that are temperatures", arguments: [
        ("175C", 175.0), ("175degC", 175), ("175_C", 175), ("T175", 175), ("05_175C", 175), ("RT", 25),
        ("rt", 25), ("175°C", 175), ("T=200C", 200), ("T200C", 200), ("3-250degC", 250), ("02_RT", 25),
        ("187.5C", 187.5), ("175 C", 175),
    ])
    func folderNames(name: String, expected: Double) {
        #expect(TemperatureTokens.folderTemperature(name) == expected)
    }

    @Test("folder names that are not temperatures", arguments: [
        "hold_175", "175", "NCM811C", "Temp", "data", "2024_05_01", "C", "T", "step_3", "LiCoO2", "05_175", "TC", "1.2.3C",
    ])
    func folderNonTemperatures(name: String) {
        #expect(TemperatureTokens.folderTemperature(name) == nil)
    }

    @Test("file-name tokens", arguments: [
        ("img_175C_001.tif", 175.0), ("scan-175degC.dm4", 175), ("T175C_frame.png", 175), ("frame_T=175C.tif", 175),
        ("LCO_RT_01.tif", 25), ("frame_12.5C.tif", 12.5), ("a 200C b.tif", 200), ("run_175C_175C.tif", 175),
        ("NCM811_200C_03.dm4", 200),
    ])
    func fileNameTokens(name: String, expected: Double) {
        #expect(TemperatureTokens.fileNameTemperature(name) == expected)
    }

    @Test("file names without a temperature token", arguments: [
        "NCM811C_001.tif", "frame_0012.tif", "LiCoO2_C_01.tif", "abc175C.tif", "x_175Cx.tif", "T175_01.tif",
        "run_175C_200C.tif",   // two different temperatures: ambiguous
        "frame_175F.tif", "img-17-5.tif",
    ])
    func fileNameNonTokens(name: String) {
        #expect(TemperatureTokens.fileNameTemperature(name) == nil)
    }

    @Test("the nearest enclosing temperature folder wins; the file name is not a folder")
    func enclosingFolder() {
        #expect(TemperatureTokens.enclosingFolderTemperature("300C/sub/175C/a.tif") == 175)
        #expect(TemperatureTokens.enclosingFolderTemperature("175C/notemp/a.tif") == 175)
        #expect(TemperatureTokens.enclosingFolderTemperature("a/b/200C.tif") == nil)
        #expect(TemperatureTokens.enclosingFolderTemperature("200C.tif") == nil)
    }

    @Test("Gatan in-situ capture paths")
    func gatanPaths() {
        #expect(GatanCapturePath(relativePath: "cap/Hour_01/Minute_02/Second_03/x_Frame_0042.dm4")
            == GatanCapturePath(second: 3723, frame: 42))
        #expect(GatanCapturePath(relativePath: "Hour_00/Minute_00/Second_59/In-situ_Frame_7.dm4")
            == GatanCapturePath(second: 59, frame: 7))
        #expect(GatanCapturePath(relativePath: "Hour_00/Minute_00/x_Frame_7.dm4") == nil)
        #expect(GatanCapturePath(relativePath: "Hour_00/Minute_61/Second_00/x_Frame_7.dm4") == nil)
        #expect(GatanCapturePath(relativePath: "Hour_00/Minute_01/Second_00/image_7.dm4") == nil)
    }

    @Test("natural sort: numbers by value, folders component-wise, ties stable")
    func naturalSort() {
        let names = ["frame_10.tif", "frame_2.tif", "Frame_3.tif", "frame_1.tif", "a/frame_1.tif", "frame_02.tif",
                     "frame_1b.tif", "b_10/x.tif", "b_9/x.tif", "b_9.tif"]
        let sorted = names.sorted(by: NaturalSort.less)
        #expect(sorted == ["a/frame_1.tif", "b_9/x.tif", "b_9.tif", "b_10/x.tif", "frame_1.tif", "frame_1b.tif",
                           "frame_2.tif", "frame_02.tif", "Frame_3.tif", "frame_10.tif"])
        #expect(NaturalSort.compare("x", "x") == .orderedSame)
        #expect(NaturalSort.less("img_99999999999999999999.tif", "img_100000000000000000000.tif"))
    }
}

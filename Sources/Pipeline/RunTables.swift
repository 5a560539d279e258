import Foundation
import FrameCore
import FrameIO

/// `frames.csv` and `steps.csv` (docs/outputs.md): the columns are declared once in
/// `FramesColumn` and `StepsColumn`; here each column gets its value, in an exhaustive switch,
/// so a new column cannot be declared without one.
enum RunTables {
    static func frames(_ table: FrameTable, _ results: [FrameResult], registrationOnly: Bool) -> CSVTable {
        let nm = table.pixelSizeNm
        var csv = CSVTable(columns: FramesColumn.self)
        for (rec, r) in zip(table.records, results) {
            // `heatfront register` leaves the measurement columns empty.
            func measured(_ v: Double?) -> CellValue { .number(registrationOnly ? nil : v) }
            csv.append { (c: FramesColumn) -> CellValue in
                switch c {
                case .frameIndex: .int(rec.frameIndex)
                case .file: .text(rec.file)
                case .page: .int(rec.page)
                case .stepIndex: .int(rec.stepIndex)
                case .temperatureC: .number(rec.temperatureC)
                case .timeS: .number(rec.timeS)
                case .shiftXPx: .number(r.shiftX)
                case .shiftYPx: .number(r.shiftY)
                case .registrationScore: .number(r.score)
                case .status: .text(r.status.text)
                case .tmIntensity: measured(r.tmIntensity)
                case .liIntensity: measured(r.liIntensity)
                case .liTmRatio: measured(r.liTmRatio)
                case .rocksaltFraction: measured(r.rocksaltFraction)
                case .frontPositionNm: measured(nm.flatMap { n in r.frontPositionPx.map { $0 * n } })
                case .frontPositionPx: measured(r.frontPositionPx)
                }
            }
        }
        return csv
    }

    static func steps(_ steps: [StepResult], pixelSizeNm nm: Double?) -> CSVTable {
        var csv = CSVTable(columns: StepsColumn.self)
        func toNm(_ v: Double?) -> Double? { nm.flatMap { n in v.map { $0 * n } } }
        for s in steps {
            csv.append { (c: StepsColumn) -> CellValue in
                switch c {
                case .stepIndex: .int(s.stepIndex)
                case .temperatureC: .number(s.temperatureC)
                case .tStartS: .number(s.tStart)
                case .tEndS: .number(s.tEnd)
                case .nFrames: .int(s.nFrames)
                case .nUsed: .int(s.nUsed)
                case .liTmRatioMean: .number(s.ratioMean)
                case .liTmRatioSEM: .number(s.ratioSEM)
                case .rocksaltFraction: .number(s.rocksaltFraction)
                case .frontPositionStartNm: .number(toNm(s.frontStartPx))
                case .frontPositionEndNm: .number(toNm(s.frontEndPx))
                case .frontVelocityNmPerS: .number(toNm(s.velocityPxPerS))
                case .frontVelocitySEMNmPerS: .number(toNm(s.velocitySEMPxPerS))
                case .frontWidthNm: .number(toNm(s.frontWidthPx))
                case .liTmRatioAverage: .number(s.ratioOfAverage)
                case .frontVelocityPxPerS: .number(s.velocityPxPerS)
                case .frontWidthPx: .number(s.frontWidthPx)
                case .columnPrecisionPm: .number(toNm(s.columnPrecisionPx).map { $0 * 1000 })
                case .frontVelocityDOF: .int(s.velocityDOF)
                case .frontMotionDetected: .bool(s.motionDetected)
                case .frontVelocityUpperNmPerS: .number(toNm(s.velocityUpperPxPerS))
                case .frontVelocityUpperPxPerS: .number(s.velocityUpperPxPerS)
                case .frontWidthSEMNm: .number(toNm(s.frontWidthSEMPx))
                case .frontWidthSEMPx: .number(s.frontWidthSEMPx)
                }
            }
        }
        return csv
    }
}

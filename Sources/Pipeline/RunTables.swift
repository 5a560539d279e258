import Foundation
import FrameCore
import FrameIO

/// `frames.csv` and `steps.csv`, column for column as run contract §3 and §4 list them.
/// Lengths go into the `_nm` columns when the pixel size is known; the `_px` columns at the
/// end (an allowed addition) always hold them in pixels.
enum RunTables {
    static let frameColumns = ["frame_index", "file", "page", "step_index", "temperature_C", "time_s",
                               "shift_x_px", "shift_y_px", "registration_score", "status",
                               "tm_intensity", "li_intensity", "li_tm_ratio", "rocksalt_fraction",
                               "front_position_nm", "front_position_px"]

    static let stepColumns = ["step_index", "temperature_C", "t_start_s", "t_end_s", "n_frames", "n_used",
                              "li_tm_ratio_mean", "li_tm_ratio_sem", "rocksalt_fraction",
                              "front_position_start_nm", "front_position_end_nm",
                              "front_velocity_nm_per_s", "front_velocity_sem_nm_per_s", "front_width_nm",
                              "li_tm_ratio_average", "front_velocity_px_per_s", "front_width_px",
                              "column_precision_pm", "front_velocity_dof", "front_motion_detected",
                              "front_velocity_upper_nm_per_s", "front_velocity_upper_px_per_s", "front_width_sem_nm", "front_width_sem_px"]

    static func frames(_ table: FrameTable, _ results: [FrameResult], registrationOnly: Bool) -> CSVTable {
        let nm = table.pixelSizeNm
        var csv = CSVTable(header: frameColumns)
        for (rec, r) in zip(table.records, results) {
            let measured = !registrationOnly
            csv.append([
                String(rec.frameIndex), rec.file, String(rec.page), String(rec.stepIndex),
                Cell.fixed(rec.temperatureC, 2), Cell.fixed(rec.timeS, 3),
                Cell.fixed(r.shiftX, 4), Cell.fixed(r.shiftY, 4), Cell.fixed(r.score, 4), r.status,
                measured ? Cell.significant(r.tmIntensity) : "", measured ? Cell.significant(r.liIntensity) : "",
                measured ? Cell.fixed(r.liTmRatio, 5) : "", measured ? Cell.fixed(r.rocksaltFraction, 5) : "",
                measured ? Cell.fixed(nm.flatMap { n in r.frontPositionPx.map { $0 * n } }, 4) : "",
                measured ? Cell.fixed(r.frontPositionPx, 3) : "",
            ])
        }
        return csv
    }

    static func steps(_ steps: [StepResult], pixelSizeNm nm: Double?) -> CSVTable {
        var csv = CSVTable(header: stepColumns)
        func toNm(_ v: Double?) -> Double? { nm.flatMap { n in v.map { $0 * n } } }
        for s in steps {
            csv.append([
                String(s.stepIndex), Cell.fixed(s.temperatureC, 2), Cell.fixed(s.tStart, 3), Cell.fixed(s.tEnd, 3),
                String(s.nFrames), String(s.nUsed), Cell.fixed(s.ratioMean, 5), Cell.fixed(s.ratioSEM, 5),
                Cell.fixed(s.rocksaltFraction, 5), Cell.fixed(toNm(s.frontStartPx), 4), Cell.fixed(toNm(s.frontEndPx), 4),
                Cell.significant(toNm(s.velocityPxPerS), 6), Cell.significant(toNm(s.velocitySEMPxPerS), 6),
                Cell.fixed(toNm(s.frontWidthPx), 4), Cell.fixed(s.ratioOfAverage, 5),
                Cell.significant(s.velocityPxPerS, 6), Cell.fixed(s.frontWidthPx, 3),
                Cell.fixed(toNm(s.columnPrecisionPx).map { $0 * 1000 }, 3),
                s.velocityDOF.map(String.init) ?? "", s.motionDetected.map { $0 ? "true" : "false" } ?? "",
                Cell.significant(toNm(s.velocityUpperPxPerS), 6), Cell.significant(s.velocityUpperPxPerS, 6),
                Cell.fixed(toNm(s.frontWidthSEMPx), 4), Cell.fixed(s.frontWidthSEMPx, 3),
            ])
        }
        return csv
    }
}

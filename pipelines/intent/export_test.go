package intent

// NewReportForTest builds a finished report from a confusion matrix.
func NewReportForTest(classes []Class, confusion [][]int) *Report {
	r := newReport(classes)
	for i, row := range confusion {
		for j, n := range row {
			for range n {
				r.add(i, j)
			}
		}
	}
	r.finish()
	return r
}

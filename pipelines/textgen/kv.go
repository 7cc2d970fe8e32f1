package textgen

// kvBatch holds the past key/value tensors of the live batch for a decoder with past inputs:
// for each layer and each of key/value one [rows, heads, past, headDim] float32 tensor, rows
// left-padded to a common past length.
//
// Why this layout and these moves: optimum's decoders concatenate past and new positions
// inside the graph and return the result as present.*, a tensor one position longer than the
// past. So a step can never write into its own input; instead two buffer sets alternate —
// the step reads past from one and ONNX Runtime writes present straight into the other
// (preallocated Go memory, so onnxruntime_go copies nothing), which is the next step's past.
// Nothing is copied per step. Copies happen only when membership changes, and only of the
// rows that move:
//   - a join writes the newcomer's rows (its prefill's present) into spare rows at the end,
//     left-padded; only a prompt longer than the batch's past re-pads the existing rows;
//   - a leave moves the last row into the hole (one row), so rows stay a dense prefix;
//   - when every row carries left padding (the longest sequences left) and it exceeds a
//     quarter of the past, the padding is cut in place (one pass), so attention stops
//     computing positions nobody reads.
//
// Buffers are allocated with headroom in rows and positions, so a step allocates only when
// the batch outgrows them.
type kvBatch struct {
	tensors       int // 2 × layers
	heads, dim    int
	rows          int
	past          int
	bufs          [2][][]float32 // [set][tensor]; set cur holds the past
	cur           int
	rowsCap       int // rows the current allocation of each set was sized for (diagnostics)
	copiedFloats  int64
	reallocations int64
}

// Headroom added when a buffer set grows.
const (
	rowHeadroom = 4
	posHeadroom = 32
)

func newKVBatch(layers, heads, dim int) *kvBatch {
	kv := &kvBatch{tensors: 2 * layers, heads: heads, dim: dim}
	for s := range kv.bufs {
		kv.bufs[s] = make([][]float32, kv.tensors)
	}
	return kv
}

// rowSize is the floats one row occupies per tensor at past length p.
func (kv *kvBatch) rowSize(p int) int { return kv.heads * p * kv.dim }

// pastTensor returns the data of past tensor t: [rows, heads, past, dim].
func (kv *kvBatch) pastData(t int) []float32 {
	return kv.bufs[kv.cur][t][:kv.rows*kv.rowSize(kv.past)]
}

// presentData returns where the next step's present tensor t goes: [rows, heads, past+1, dim]
// in the other buffer set, grown if needed. Its contents are undefined until the step runs.
func (kv *kvBatch) presentData(t int) []float32 {
	n := kv.rows * kv.rowSize(kv.past+1)
	set := 1 - kv.cur
	if cap(kv.bufs[set][t]) < n {
		kv.bufs[set][t] = make([]float32, (kv.rows+rowHeadroom)*kv.rowSize(kv.past+1+posHeadroom))
		kv.reallocations++
	}
	return kv.bufs[set][t][:n]
}

// advance makes the present written by the last step the past of the next one.
func (kv *kvBatch) advance() {
	kv.cur = 1 - kv.cur
	kv.past++
}

// ensure makes the current set hold rows × past floats per tensor, keeping the data of the
// first keep rows (laid out at the current past length).
func (kv *kvBatch) ensure(rows, past, keep int) {
	n := rows * kv.rowSize(past)
	for t := range kv.bufs[kv.cur] {
		b := kv.bufs[kv.cur][t]
		if cap(b) >= n {
			continue
		}
		nb := make([]float32, (rows+rowHeadroom)*kv.rowSize(past+posHeadroom))
		m := keep * kv.rowSize(kv.past)
		copy(nb, b[:m])
		kv.copiedFloats += int64(m)
		kv.bufs[kv.cur][t] = nb
		kv.reallocations++
	}
}

// repad moves every row from past length kv.past to a longer past p, adding left padding.
func (kv *kvBatch) repad(p int) {
	if p <= kv.past {
		return
	}
	old := kv.past
	kv.ensure(kv.rows, p, kv.rows)
	shift := p - old
	for t := range kv.bufs[kv.cur] {
		b := kv.bufs[kv.cur][t][:kv.rows*kv.rowSize(p)]
		// Walk backwards: destinations lie after their sources.
		for r := kv.rows - 1; r >= 0; r-- {
			for h := kv.heads - 1; h >= 0; h-- {
				src := b[(r*kv.heads+h)*old*kv.dim:][:old*kv.dim]
				dst := b[(r*kv.heads+h)*p*kv.dim:][:p*kv.dim]
				copy(dst[shift*kv.dim:], src)
				clear(dst[:shift*kv.dim])
			}
		}
		kv.copiedFloats += int64(kv.rows * kv.rowSize(old))
	}
	kv.past = p
}

// add appends n rows whose present tensors src[t] ([n, heads, l, dim]) came from their
// prefill; rows are left-padded to the batch's past. It returns the first new row index.
func (kv *kvBatch) add(src [][]float32, n, l int) int {
	if l > kv.past {
		if kv.rows == 0 {
			kv.past = l
		} else {
			kv.repad(l)
		}
	}
	p := kv.past
	first := kv.rows
	kv.ensure(kv.rows+n, p, kv.rows)
	pad := p - l
	for t := range kv.bufs[kv.cur] {
		b := kv.bufs[kv.cur][t][:(kv.rows+n)*kv.rowSize(p)]
		for i := 0; i < n; i++ {
			for h := 0; h < kv.heads; h++ {
				s := src[t][((i*kv.heads)+h)*l*kv.dim:][:l*kv.dim]
				d := b[((first+i)*kv.heads+h)*p*kv.dim:][:p*kv.dim]
				clear(d[:pad*kv.dim])
				copy(d[pad*kv.dim:], s)
			}
		}
		kv.copiedFloats += int64(n * kv.rowSize(l))
	}
	kv.rows += n
	return first
}

// remove drops row r by moving the last row into its place. It returns the index of the row
// that moved into r (the old last row), or -1 when r was the last row.
func (kv *kvBatch) remove(r int) int {
	last := kv.rows - 1
	moved := -1
	if r != last {
		sz := kv.rowSize(kv.past)
		for t := range kv.bufs[kv.cur] {
			b := kv.bufs[kv.cur][t]
			copy(b[r*sz:(r+1)*sz], b[last*sz:(last+1)*sz])
		}
		kv.copiedFloats += int64(kv.tensors * sz)
		moved = last
	}
	kv.rows--
	if kv.rows == 0 {
		kv.past = 0
	}
	return moved
}

// trim cuts k leading (padding) positions from every row, in place.
func (kv *kvBatch) trim(k int) {
	if k <= 0 || kv.rows == 0 {
		return
	}
	old, p := kv.past, kv.past-k
	for t := range kv.bufs[kv.cur] {
		b := kv.bufs[kv.cur][t]
		// Forwards: every destination lies at or before its source.
		for rh := 0; rh < kv.rows*kv.heads; rh++ {
			copy(b[rh*p*kv.dim:][:p*kv.dim], b[(rh*old+k)*kv.dim:][:p*kv.dim])
		}
		kv.copiedFloats += int64(kv.rows * kv.rowSize(p))
	}
	kv.past = p
}

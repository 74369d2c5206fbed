package yara

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"math"
)

// argsMatch reports whether args have exactly the types in want.
func argsMatch(args []*cexpr, want ...vtype) bool {
	if len(args) != len(want) {
		return false
	}
	for i, a := range args {
		if a.t != want[i] && !(want[i] == tFloat && a.t == tInt) {
			return false
		}
	}
	return true
}

// dataRange returns data[off:off+size], or ok false when off is out of bounds.
func dataRange(data []byte, o, s val) ([]byte, bool) {
	if !o.ok || !s.ok || o.i < 0 || s.i < 0 || o.i > int64(len(data)) {
		return nil, false
	}
	// Like YARA, a range that runs past the end is cut at the end.
	return data[o.i : o.i+min(s.i, int64(len(data))-o.i)], true
}

// bytesArg builds an evaluator for a function over bytes that takes either
// (offset, size) of the scanned data or (string).
func (c *compiler) bytesArg(mod, fn string, args []*cexpr, extra ...vtype) (func(*scanCtx) ([]byte, bool), []*cexpr, error) {
	if len(args) >= 2+len(extra) && argsMatch(args[:2], tInt, tInt) && argsMatch(args[2:], extra...) {
		o, s := args[0].ev, args[1].ev
		return func(x *scanCtx) ([]byte, bool) { return dataRange(x.data, o(x), s(x)) }, args[2:], nil
	}
	if len(args) >= 1+len(extra) && argsMatch(args[:1], tStr) && argsMatch(args[1:], extra...) {
		sv := args[0].ev
		return func(x *scanCtx) ([]byte, bool) {
			v := sv(x)
			return []byte(v.s), v.ok
		}, args[1:], nil
	}
	return nil, nil, c.errf(ErrType, fn, "wrong arguments for %s.%s", mod, fn)
}

func floatArg(e *cexpr) func(*scanCtx) val { return toFloat(e).ev }

func (c *compiler) moduleCall(mod, fn string, args []*cexpr) (*cexpr, error) {
	switch mod {
	case "hash":
		var h func([]byte) string
		switch fn {
		case "md5":
			h = func(b []byte) string { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
		case "sha1":
			h = func(b []byte) string { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }
		case "sha256":
			h = func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
		case "checksum32", "crc32":
			get, _, err := c.bytesArg(mod, fn, args)
			if err != nil {
				return nil, err
			}
			crc := fn == "crc32"
			return &cexpr{t: tInt, ev: func(x *scanCtx) val {
				b, ok := get(x)
				if !ok {
					return undef
				}
				if crc {
					return vInt(int64(crc32.ChecksumIEEE(b)))
				}
				var sum uint32
				for _, v := range b {
					sum += uint32(v)
				}
				return vInt(int64(sum))
			}}, nil
		default:
			return nil, c.errf(ErrUndefined, fn, "module hash has no function %q", fn)
		}
		get, _, err := c.bytesArg(mod, fn, args)
		if err != nil {
			return nil, err
		}
		return &cexpr{t: tStr, ev: func(x *scanCtx) val {
			b, ok := get(x)
			if !ok {
				return undef
			}
			return vStr(h(b))
		}}, nil
	case "math":
		return c.mathCall(fn, args)
	}
	return nil, c.errf(ErrUnknownModule, mod, "module %q is not implemented", mod)
}

func byteCounts(b []byte) *[256]float64 {
	var n [256]float64
	for _, v := range b {
		n[v]++
	}
	return &n
}

func (c *compiler) mathCall(fn string, args []*cexpr) (*cexpr, error) {
	floatOf := func(f func([]byte) (float64, bool), extra ...vtype) (*cexpr, error) {
		get, _, err := c.bytesArg("math", fn, args, extra...)
		if err != nil {
			return nil, err
		}
		return &cexpr{t: tFloat, ev: func(x *scanCtx) val {
			b, ok := get(x)
			if !ok {
				return undef
			}
			r, ok := f(b)
			if !ok {
				return undef
			}
			return vFloat(r)
		}}, nil
	}
	switch fn {
	case "entropy":
		return floatOf(func(b []byte) (float64, bool) {
			if len(b) == 0 {
				return 0, false
			}
			n := byteCounts(b)
			e := 0.0
			for _, k := range n {
				if k > 0 {
					p := k / float64(len(b))
					e -= p * math.Log2(p)
				}
			}
			return e, true
		})
	case "mean":
		return floatOf(func(b []byte) (float64, bool) {
			if len(b) == 0 {
				return 0, false
			}
			s := 0.0
			for _, v := range b {
				s += float64(v)
			}
			return s / float64(len(b)), true
		})
	case "serial_correlation":
		return floatOf(func(b []byte) (float64, bool) {
			if len(b) == 0 {
				return 0, false
			}
			var sccun, scclast, scct1, scct2, scct3 float64
			sccfirst := float64(b[0])
			for i, v := range b {
				u := float64(v)
				if i > 0 {
					scct1 += scclast * u
				}
				scct2 += u
				scct3 += u * u
				scclast = u
				sccun = u
			}
			_ = sccun
			scct1 += scclast * sccfirst
			scct2 *= scct2
			n := float64(len(b))
			d := n*scct3 - scct2
			if d == 0 {
				return -100000, true
			}
			return (n*scct1 - scct2) / d, true
		})
	case "monte_carlo_pi":
		return floatOf(func(b []byte) (float64, bool) {
			const montn = 6
			inmont, mcount := 0, 0
			incirc := math.Pow(math.Pow(256, montn/2)-1, 2)
			for i := 0; i+montn <= len(b); i += montn {
				mcount++
				var mx, my float64
				for j := 0; j < montn/2; j++ {
					mx = mx*256 + float64(b[i+j])
					my = my*256 + float64(b[i+j+montn/2])
				}
				if mx*mx+my*my <= incirc {
					inmont++
				}
			}
			if mcount == 0 {
				return 0, false
			}
			pi := 4 * float64(inmont) / float64(mcount)
			return math.Abs((pi - math.Pi) / math.Pi), true
		})
	case "deviation":
		if len(args) < 2 {
			return nil, c.errf(ErrType, fn, "wrong arguments for math.deviation")
		}
		mean := floatArg(args[len(args)-1])
		get, _, err := c.bytesArg("math", fn, args, tFloat)
		if err != nil {
			return nil, err
		}
		return &cexpr{t: tFloat, ev: func(x *scanCtx) val {
			b, ok := get(x)
			m := mean(x)
			if !ok || !m.ok || len(b) == 0 {
				return undef
			}
			s := 0.0
			for _, v := range b {
				s += math.Abs(float64(v) - m.f)
			}
			return vFloat(s / float64(len(b)))
		}}, nil
	case "in_range":
		if !argsMatch(args, tFloat, tFloat, tFloat) {
			return nil, c.errf(ErrType, fn, "math.in_range takes three numbers")
		}
		a, lo, hi := floatArg(args[0]), floatArg(args[1]), floatArg(args[2])
		return &cexpr{t: tBool, ev: func(x *scanCtx) val {
			v, l, h := a(x), lo(x), hi(x)
			if !v.ok || !l.ok || !h.ok {
				return undef
			}
			return vBool(l.f <= v.f && v.f <= h.f)
		}}, nil
	case "min", "max":
		if !argsMatch(args, tInt, tInt) {
			return nil, c.errf(ErrType, fn, "math.%s takes two integers", fn)
		}
		a, b := args[0].ev, args[1].ev
		isMin := fn == "min"
		return &cexpr{t: tInt, ev: func(x *scanCtx) val {
			va, vb := a(x), b(x)
			if !va.ok || !vb.ok {
				return undef
			}
			if (va.i < vb.i) == isMin {
				return va
			}
			return vb
		}}, nil
	case "abs":
		if !argsMatch(args, tInt) {
			return nil, c.errf(ErrType, fn, "math.abs takes an integer")
		}
		a := args[0].ev
		return &cexpr{t: tInt, ev: func(x *scanCtx) val {
			v := a(x)
			if v.ok && v.i < 0 {
				v.i = -v.i
			}
			return v
		}}, nil
	case "to_number":
		if len(args) != 1 || args[0].t != tBool {
			return nil, c.errf(ErrType, fn, "math.to_number takes a boolean")
		}
		a := args[0].ev
		return &cexpr{t: tInt, ev: func(x *scanCtx) val {
			v := a(x)
			if !v.ok {
				return v
			}
			return vInt(v.i)
		}}, nil
	case "count", "percentage":
		if len(args) != 1 && len(args) != 3 {
			return nil, c.errf(ErrType, fn, "wrong arguments for math.%s", fn)
		}
		for _, a := range args {
			if a.t != tInt {
				return nil, c.errf(ErrType, fn, "math.%s takes integers", fn)
			}
		}
		bv := args[0].ev
		var o, s func(*scanCtx) val
		if len(args) == 3 {
			o, s = args[1].ev, args[2].ev
		}
		pct := fn == "percentage"
		return &cexpr{t: map[bool]vtype{true: tFloat, false: tInt}[pct], ev: func(x *scanCtx) val {
			b := bv(x)
			data := x.data
			if o != nil {
				var ok bool
				if data, ok = dataRange(x.data, o(x), s(x)); !ok {
					return undef
				}
			}
			if !b.ok || b.i < 0 || b.i > 255 {
				return undef
			}
			n := 0
			for _, v := range data {
				if int64(v) == b.i {
					n++
				}
			}
			if pct {
				if len(data) == 0 {
					return undef
				}
				return vFloat(float64(n) / float64(len(data)))
			}
			return vInt(int64(n))
		}}, nil
	case "mode":
		if len(args) != 0 && !argsMatch(args, tInt, tInt) {
			return nil, c.errf(ErrType, fn, "wrong arguments for math.mode")
		}
		var o, s func(*scanCtx) val
		if len(args) == 2 {
			o, s = args[0].ev, args[1].ev
		}
		return &cexpr{t: tInt, ev: func(x *scanCtx) val {
			data := x.data
			if o != nil {
				var ok bool
				if data, ok = dataRange(x.data, o(x), s(x)); !ok {
					return undef
				}
			}
			if len(data) == 0 {
				return undef
			}
			n := byteCounts(data)
			best := 0
			for i := range n {
				if n[i] > n[best] {
					best = i
				}
			}
			return vInt(int64(best))
		}}, nil
	}
	return nil, c.errf(ErrUndefined, fn, "module math has no function %q", fn)
}

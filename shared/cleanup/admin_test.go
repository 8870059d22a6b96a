package cleanup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// TestAdminAnswersAreTheReportsJSON: the API's admin answers (apiwire) are the service's
// reports converted, and the JSON must not change on the way. Every field is filled with its
// own value, so a field the service adds, and the wire type or the conversion misses, fails
// here; zero and empty reports keep their nulls and empty lists apart.
func TestAdminAnswersAreTheReportsJSON(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sliceLen int // of every slice in the report; -1 leaves them nil
	}{
		{"every field set", 1},
		{"empty lists", 0},
		{"nil lists", -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var report RunReport
			if tc.sliceLen >= 0 {
				f := filler{t: t, sliceLen: tc.sliceLen}
				f.fill(reflect.ValueOf(&report).Elem())
			}
			want, err := json.Marshal(report)
			if err != nil {
				t.Fatal(err)
			}
			got, err := json.Marshal(runReportWire(report))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("the admin answer differs from the run report:\nanswer: %s\nreport: %s", got, want)
			}
		})
	}
}

// filler sets every exported field to a value of its own, depth first.
type filler struct {
	t        *testing.T
	sliceLen int
	n        int
}

func (f *filler) fill(v reflect.Value) {
	f.n++
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("v%d", f.n))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(f.n))
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(f.n) + 0.5)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		f.fill(p.Elem())
		v.Set(p)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), f.sliceLen, f.sliceLen)
		for i := range f.sliceLen {
			f.fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 20, 10, 0, 0, f.n, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				f.fill(v.Field(i))
			}
		}
	default:
		f.t.Fatalf("filler: no value for a field of kind %s (%s): teach it", v.Kind(), v.Type())
	}
}

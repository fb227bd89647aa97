package workerpool

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// vectors is systems/workerpool/kernel_vectors.json, the outputs every
// implementation must reproduce exactly.
type vectors struct {
	Cases []struct {
		Kernel string `json:"kernel"`
		Seed   uint64 `json:"seed"` // up to 2^64-1: decoded straight into uint64, never via float64
		Rounds int    `json:"rounds"`
		Size   int    `json:"size"`
		Output string `json:"output"`
	} `json:"cases"`
}

func TestKernelVectors(t *testing.T) {
	data, err := os.ReadFile("../../../systems/workerpool/kernel_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) == 0 {
		t.Fatal("no cases")
	}
	for _, c := range v.Cases {
		name := fmt.Sprintf("%s/seed=%d/rounds=%d/size=%d", c.Kernel, c.Seed, c.Rounds, c.Size)
		t.Run(name, func(t *testing.T) {
			var got string
			switch c.Kernel {
			case "spin":
				got = Spin(c.Seed, c.Rounds)
			case "hash":
				got = Hash(c.Seed, c.Rounds, c.Size)
			default:
				t.Fatalf("unknown kernel %q", c.Kernel)
			}
			if got != c.Output {
				t.Errorf("got %q, want %q", got, c.Output)
			}
			if got2 := (Task{c.Kernel, c.Seed, c.Rounds, c.Size}).Do(); got2 != c.Output {
				t.Errorf("Task.Do: got %q, want %q", got2, c.Output)
			}
		})
	}
}

func TestSpinIsSixteenDigits(t *testing.T) {
	// 0x9E3779B97F4A7C15 ^ 0x9E3779B97F4A7C14 = 1: leading zeros must be kept.
	if got, want := Spin(0x9E3779B97F4A7C14, 0), "0000000000000001"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		kernel      string
		rounds      int
		size        int
		errContains string // "" means valid
	}{
		{"spin", 0, 0, ""},
		{"spin", MaxRounds, 0, ""},
		{"spin", 10, -5, ""}, // size is ignored for spin
		{"hash", 1, 8, ""},
		{"hash", 1, MaxSize, ""},
		{"", 1, 8, "kernel"},
		{"SPIN", 1, 0, "kernel"},
		{"spin", -1, 0, "rounds"},
		{"spin", MaxRounds + 1, 0, "rounds"},
		{"hash", -1, 8, "rounds"},
		{"hash", 1, 0, "size"},
		{"hash", 1, -8, "size"},
		{"hash", 1, 12, "size"},
		{"hash", 1, MaxSize + 8, "size"},
	}
	for _, tt := range tests {
		err := Check(tt.kernel, tt.rounds, tt.size)
		switch {
		case tt.errContains == "" && err != nil:
			t.Errorf("Check(%q, %d, %d) = %v, want nil", tt.kernel, tt.rounds, tt.size, err)
		case tt.errContains != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.errContains+":")):
			t.Errorf("Check(%q, %d, %d) = %v, want an error naming %s", tt.kernel, tt.rounds, tt.size, err, tt.errContains)
		}
	}
}

func ExampleSpin() {
	fmt.Println(Spin(0, 0))
	fmt.Println(Spin(0, 1))
	// Output:
	// 9e3779b97f4a7c15
	// dc1b77ae0bf34dad
}

func ExampleHash() {
	fmt.Printf("%q\n", Hash(0, 0, 8)) // no rounds: the empty digest
	fmt.Println(Hash(0, 1, 8))
	// Output:
	// ""
	// af5570f5a1810b7af78caf4bc70a660f0df51e42baf91d4de5b2328de0e83dfc
}

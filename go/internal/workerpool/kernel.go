// Package workerpool is the Go side of the workerpool benchmark: the two
// CPU-bound kernels every implementation shares, and a bounded pool of
// goroutines that runs them, so that Go's scaling can be set beside Python's
// sync, threads and process pools (see systems/workerpool/README.md for the
// contract it follows).
package workerpool

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
)

// Limits on a task's cost, so that one request cannot occupy a worker for
// hours or allocate without bound.
const (
	MaxRounds = 100_000_000
	MaxSize   = 64 << 20
)

// Spin is the contract's spin kernel: xorshift64 from seed ^ 0x9E3779B97F4A7C15
// for rounds rounds, as 16 lowercase hex digits. Pure integer arithmetic, it is
// the kernel that holds CPython's GIL throughout.
func Spin(seed uint64, rounds int) string {
	x := seed ^ 0x9E3779B97F4A7C15
	for range max(rounds, 0) {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	s := strconv.FormatUint(x, 16)
	return "0000000000000000"[len(s):] + s
}

// Hash is the contract's hash kernel: SHA-256 chained rounds times over a
// block of size/8 little-endian copies of seed, each round hashing the
// previous digest (empty at first) followed by the block; the last digest in
// lowercase hex, "" for zero rounds. The block is built once per call, so the
// cost measured is hashing, not allocation.
func Hash(seed uint64, rounds, size int) string {
	block := make([]byte, max(size/8, 0)*8)
	for i := 0; i < len(block); i += 8 {
		binary.LittleEndian.PutUint64(block[i:], seed)
	}
	var buf [sha256.Size]byte
	var digest []byte // empty before the first round
	h := sha256.New()
	for range max(rounds, 0) {
		h.Reset()
		h.Write(digest)
		h.Write(block)
		digest = h.Sum(buf[:0])
	}
	return hex.EncodeToString(digest)
}

// Check validates a task's parameters before it reaches a worker, so that a
// bad request fails at once with an error naming the field rather than
// running forever or allocating without bound. size is ignored for spin.
func Check(kernel string, rounds, size int) error {
	switch kernel {
	case "spin", "hash":
	default:
		return fmt.Errorf("kernel: %q is neither spin nor hash", kernel)
	}
	if rounds < 0 || rounds > MaxRounds {
		return fmt.Errorf("rounds: %d is outside 0..%d", rounds, MaxRounds)
	}
	if kernel == "hash" && (size <= 0 || size%8 != 0 || size > MaxSize) {
		return fmt.Errorf("size: %d is not a positive multiple of 8 at most %d", size, MaxSize)
	}
	return nil
}

package keys

import "strings"

// SlotCount is the number of hash slots of a Redis Cluster.
const SlotCount = 16384

// Slot returns the Redis Cluster hash slot of key, as CLUSTER KEYSLOT computes it: CRC16
// (XMODEM) of the key's hash tag (the text between the first "{" and the first "}" after it,
// when not empty) or of the whole key, modulo SlotCount. A cluster refuses a command, script
// or transaction whose keys are in different slots (CROSSSLOT), even on one node; code that
// batches keys it did not build itself (SCAN replies) groups them with Slot. go-redis has the
// same function, but not exported.
func Slot(key string) int {
	s := key
	if open := strings.IndexByte(s, '{'); open >= 0 {
		if end := strings.IndexByte(s[open+1:], '}'); end > 0 {
			s = s[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^s[i]]
	}
	return int(crc) % SlotCount
}

// crc16Table is CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0), the CRC Redis
// Cluster hashes keys with.
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// A resolver client on Go's own pure-Go resolver (CGO_ENABLED=0, PreferGo), built by
// tests/build-client-image.sh. Same usage and output as resolve.c:
//
//	resolve-go NAME [COUNT] [INTERVAL_MS]
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: resolve-go NAME [COUNT] [INTERVAL_MS]")
		os.Exit(2)
	}
	count, interval := 1, 0
	if len(os.Args) > 2 {
		count, _ = strconv.Atoi(os.Args[2])
	}
	if len(os.Args) > 3 {
		interval, _ = strconv.Atoi(os.Args[3])
	}
	resolver := &net.Resolver{PreferGo: true}
	failed := false
	for i := 0; i < count; i++ {
		start := time.Now()
		addrs, err := resolver.LookupIP(context.Background(), "ip4", os.Args[1])
		took := float64(time.Since(start).Microseconds()) / 1000
		if err != nil {
			fmt.Printf("FAIL %.1f %s\n", took, strings.ReplaceAll(err.Error(), "\n", " "))
			failed = true
		} else {
			text := make([]string, len(addrs))
			for j, a := range addrs {
				text[j] = a.String()
			}
			fmt.Printf("OK %.1f %s\n", took, strings.Join(text, " "))
		}
		if interval > 0 && i+1 < count {
			time.Sleep(time.Duration(interval) * time.Millisecond)
		}
	}
	if failed {
		os.Exit(1)
	}
}

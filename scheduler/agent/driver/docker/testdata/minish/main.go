// Command minish is a tiny stand-in for /bin/sh in the driver's FROM
// scratch test image, so that "sh -c SCRIPT" execs and commands can be
// tested without pulling a base image. SCRIPT is a ";"-separated list of:
// echo WORDS [>&2 | > FILE], cat FILE, sleep SECONDS, exit N, true, false;
// $VAR and ${VAR} are expanded in every word. Anything else fails with
// status 127, as a shell does for an unknown command.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

func main() {
	if len(os.Args) != 3 || os.Args[1] != "-c" {
		fmt.Fprintln(os.Stderr, "usage: minish -c SCRIPT")
		os.Exit(2)
	}
	os.Exit(run(os.Args[2]))
}

func run(script string) int {
	status := 0
	for _, cmd := range strings.Split(script, ";") {
		f := strings.Fields(cmd)
		if len(f) == 0 {
			continue
		}
		for i := range f {
			f[i] = os.ExpandEnv(f[i])
		}
		switch f[0] {
		case "echo":
			out := os.Stdout
			switch {
			case f[len(f)-1] == ">&2":
				out, f = os.Stderr, f[:len(f)-1]
			case len(f) >= 3 && f[len(f)-2] == ">":
				file, err := os.Create(f[len(f)-1])
				if err != nil {
					fmt.Fprintln(os.Stderr, "minish:", err)
					return 1
				}
				defer file.Close()
				out, f = file, f[:len(f)-2]
			}
			fmt.Fprintln(out, strings.Join(f[1:], " "))
			status = 0
		case "cat":
			b, err := os.ReadFile(arg(f))
			if err != nil {
				fmt.Fprintln(os.Stderr, "minish:", err)
				return 1
			}
			_, _ = os.Stdout.Write(b)
			status = 0
		case "sleep":
			secs, err := strconv.ParseFloat(arg(f), 64)
			if err != nil {
				fmt.Fprintln(os.Stderr, "minish: sleep:", err)
				return 2
			}
			time.Sleep(time.Duration(secs * float64(time.Second)))
			status = 0
		case "exit":
			n, err := strconv.Atoi(arg(f))
			if err != nil {
				return status
			}
			return n
		case "true":
			status = 0
		case "false":
			status = 1
		default:
			fmt.Fprintf(os.Stderr, "minish: %s: not found\n", f[0])
			status = 127
		}
	}
	return status
}

func arg(f []string) string {
	if len(f) < 2 {
		return ""
	}
	return f[1]
}

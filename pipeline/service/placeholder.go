package service

import (
	"flag"
	"fmt"
	"os"
)

// Placeholder is the main of a service whose component is not built yet: it
// accepts the common configuration (so deployments can be written against
// it), logs that there is nothing to run, and exits 0.
func Placeholder(name, adminAddr string) {
	fs := flag.NewFlagSet(name, flag.ExitOnError)
	var common Common
	common.Register(fs, adminAddr)
	if err := Parse(fs, os.Args[1:], os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	log, err := common.Logger(name)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		os.Exit(2)
	}
	log.Warn("component not built yet; nothing to run", "component", name)
}

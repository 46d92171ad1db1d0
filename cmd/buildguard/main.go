// Command buildguard refuses to publish what a compromised builder made.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/buildguard/buildguard/internal/cli"
	"github.com/buildguard/buildguard/internal/exitcode"
	"github.com/buildguard/buildguard/internal/rootless"
)

func main() {
	rootless.Child()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], cli.IO{Out: os.Stdout, Err: os.Stderr})
	stop()
	if err != nil && err.Error() != "" {
		fmt.Fprintf(os.Stderr, "buildguard: %v\n", err)
	}
	os.Exit(exitcode.Of(err))
}

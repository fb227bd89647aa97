// Package flagargs parses a command's flags the way every command here does: -h answers with the
// usage line and the flags' defaults as an error (the command prints it and exits 2), and a
// positional argument is refused.
package flagargs

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
)

// Parse parses args into fs. On -h the error is usage followed by fs's defaults; any other
// flag error is returned as is; an argument left over is an error naming it.
func Parse(fs *flag.FlagSet, args []string, usage string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b bytes.Buffer
			fs.SetOutput(&b)
			fs.PrintDefaults()
			return fmt.Errorf("%s\n%s", usage, b.String())
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return nil
}

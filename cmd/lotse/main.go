package main

import (
	"os"

	"github.com/lotse/lotse/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }

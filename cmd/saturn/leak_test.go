package main

import (
	"testing"

	"saturn/internal/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

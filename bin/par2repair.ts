#!/usr/bin/env bun
// par2cmdline's `par2repair …`, the same as `blaine par2 repair …`: for scripts that call it by that name.
import "./blaine.ts";

#!/usr/bin/env bun
// par2cmdline's `par2verify …`, the same as `blaine par2 verify …`: for scripts that call it by that name.
import "./blaine.ts";

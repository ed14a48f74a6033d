#!/usr/bin/env bun
// par2cmdline's `par2create …`, the same as `blaine par2 create …`: for scripts that call it by that name.
import "./blaine.ts";

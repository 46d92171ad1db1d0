// The build of buildguard's npm example: it uses the two packages npm ci
// installed into node_modules (inside the source tree, which the build may
// write) and writes its output to /out (OUT_DIR when set).
'use strict';
const fs = require('fs');
const path = require('path');
const leftPad = require('left-pad');
const isNumber = require('is-number');

const out = process.env.OUT_DIR || '/out';
const lines = ['1', '22', 'three'].map((x) => leftPad(x, 6, '.') + ' ' + (isNumber(x) ? 'number' : 'not a number'));
fs.mkdirSync(path.join(out, 'dist'), { recursive: true });
fs.writeFileSync(path.join(out, 'dist', 'report.txt'), lines.join('\n') + '\n');
console.log('built dist/report.txt from ' + lines.length + ' lines');

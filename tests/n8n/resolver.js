// Resolves n8n node parameters with n8n's own code (n8n-workflow, the release n8n 1.123 ships), for the
// replay of docs/n8n/*.json in tests/n8n/replay.py. One JSON request per stdin line, one JSON answer per
// stdout line:
//   {"op": "load", "workflow": {...}}                    -> {"ok": true}
//   {"op": "params", "node", "ctx"}                      -> {"ok": true, "value": <the node's parameters, resolved>}
//   {"op": "set", "node", "ctx"}                         -> {"ok": true, "value": <the Set node's output json>}
//   {"op": "if", "node", "ctx"}                          -> {"ok": true, "value": true | false}
// ctx: {runData, runIndex, itemIndex, input: [items], source: {...}, execution: {...}}, as n8n's execution
// engine hands them to a node (runData in n8n's IRunData shape). Errors: {"ok": false, "error": "..."}.
'use strict';

const readline = require('readline');
const lodashSet = require('lodash/set');
const { Workflow, executeFilter, validateFieldType, deepCopy } = require('n8n-workflow');

// Node types are not needed to resolve expressions: n8n skips unknown types when it builds a Workflow.
const nodeTypes = {
	getByName: () => undefined,
	getByNameAndVersion: () => undefined,
	getKnownTypes: () => ({}),
};

let workflow = null;

function resolve(nodeName, value, ctx) {
	const node = workflow.getNode(nodeName);
	if (!node) throw new Error(`no node named ${nodeName}`);
	const executeData = {
		node,
		data: { main: [ctx.input] },
		source: { main: ctx.source ? [ctx.source] : [] },
	};
	const runExecutionData = { resultData: { runData: ctx.runData } };
	const additionalKeys = { $execution: ctx.execution, $vars: {} };
	return workflow.expression.getParameterValue(
		value, runExecutionData, ctx.runIndex, ctx.itemIndex, nodeName, ctx.input, 'manual',
		additionalKeys, executeData,
	);
}

// Set node 3.3+ in manual mode ("assignments"), as n8n-nodes-base's Set v2 code does it: each value is
// checked and converted by n8n's validateFieldType, then written with dot notation (lodash set).
function runSet(nodeName, ctx) {
	const node = workflow.getNode(nodeName);
	const parameters = resolve(nodeName, node.parameters, ctx);
	if ((parameters.mode || 'manual') !== 'manual') throw new Error('only the manual mode of the Set node is replayed');
	const options = parameters.options || {};
	const item = ctx.input[ctx.itemIndex];
	const out = parameters.includeOtherFields ? deepCopy(item.json) : {};
	for (const assignment of (parameters.assignments && parameters.assignments.assignments) || []) {
		let raw = assignment.value;
		if (raw === undefined || raw === null) {  // Set 3.2+: an empty value is null, whatever the type
			lodashSet(out, assignment.name, null);
			continue;
		}
		if (assignment.type === 'string') raw = typeof raw === 'object' ? JSON.stringify(raw) : String(raw);
		const checked = validateFieldType(assignment.name, raw, assignment.type);
		if (!checked.valid) {
			throw new Error(`${nodeName}: ${checked.errorMessage} [item ${ctx.itemIndex}]`);
		}
		const value = checked.newValue === undefined ? null : checked.newValue;
		if (options.dotNotation === false) out[assignment.name] = value;
		else lodashSet(out, assignment.name, value);
	}
	return out;
}

// If node 2.x: the "conditions" filter parameter, resolved, then judged by n8n's executeFilter.
function runIf(nodeName, ctx) {
	const node = workflow.getNode(nodeName);
	const conditions = resolve(nodeName, node.parameters.conditions, ctx);
	return executeFilter(conditions, { itemIndex: ctx.itemIndex });
}

function handle(request) {
	switch (request.op) {
		case 'load':
			workflow = new Workflow({
				id: 'replay', name: request.workflow.name, nodes: request.workflow.nodes,
				connections: request.workflow.connections, active: false, nodeTypes,
				settings: request.workflow.settings || {},
			});
			return true;
		case 'params':
			return resolve(request.node, workflow.getNode(request.node).parameters, request.ctx);
		case 'set':
			return runSet(request.node, request.ctx);
		case 'if':
			return runIf(request.node, request.ctx);
		default:
			throw new Error(`unknown op ${request.op}`);
	}
}

const lines = readline.createInterface({ input: process.stdin });
lines.on('line', (line) => {
	let answer;
	try {
		answer = { ok: true, value: handle(JSON.parse(line)) };
	} catch (error) {
		answer = { ok: false, error: String((error && error.message) || error) };
	}
	process.stdout.write(JSON.stringify(answer) + '\n');
});

/**
 * A child process of the atomic-publish test: `writers` async writers publish
 * entries to the same target at once; prints each writer's outcome as one
 * JSON line.
 *
 *   node --import tsx atomic-publish-writer.ts <target> <process-name> <writers>
 */
import { writeEntry } from './atomic-entry.js';

const [target, name, count] = process.argv.slice(2);
const outcomes = await Promise.all(Array.from({ length: Number(count) }, (_, i) => writeEntry(target!, `${name}/${i}`)));
process.stdout.write(`${JSON.stringify(outcomes)}\n`);

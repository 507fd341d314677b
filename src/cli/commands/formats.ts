import { defineCommand } from 'citty';

export default defineCommand({
  meta: { name: 'formats', description: 'List number formats (placeholder until the formats library lands)' },
  run() {
    console.log('formats: not yet implemented');
  },
});

import type { BuildPlan, GantryError, PlannedStage, Step, Warning } from '../index.js';


export function formatWarning(w: Warning): string {
  const loc = w.location;
  const where = loc ? `${loc.file}:${loc.line}${loc.column !== undefined ? `:${loc.column}` : ''}: ` : '';
  return `${where}warning: ${w.rule}: ${w.message}`;
}

export function formatError(err: GantryError): string {
  return `error: ${err.message}`;
}

function baseText(stage: PlannedStage, plan: BuildPlan): string {
  switch (stage.base.type) {
    case 'scratch':
      return 'scratch';
    case 'image':
      return `image ${stage.base.ref}`;
    case 'stage': {
      const idx = stage.base.stage;
      const parent = plan.stages.find((s) => s.index === idx);
      return `stage ${parent?.name ?? idx}`;
    }
  }
}

function stepDetail(step: Step): string {
  switch (step.op) {
    case 'run': {
      const parts: string[] = [];
      if (step.mounts.length) parts.push(`mounts: ${step.mounts.map((m) => `${m.type}:${m.target ?? m.env ?? ''}`).join(', ')}`);
      if (step.network !== 'default') parts.push(`network: ${step.network}`);
      if (step.heredocs.length) parts.push(`heredocs: ${step.heredocs.map((h) => h.name).join(', ')}`);
      return parts.join('; ');
    }
    case 'copy': {
      const from = step.source.type === 'context' ? 'context' : step.source.type === 'stage' ? `stage ${step.source.stage}` : `image ${step.source.ref}`;
      return `from ${from}: ${step.sources.join(' ')} → ${step.dest}`;
    }
    case 'workdir':
      return `→ ${step.path}`;
    case 'env':
      return step.pairs.map((p) => `${p.key}=${p.value}`).join(' ');
    case 'arg':
      return step.args.map((a) => (a.value === undefined ? `${a.name} (unset)` : `${a.name}=${a.value} (${a.source})`)).join(' ');
    case 'expose':
      return step.ports.join(' ');
    default:
      return '';
  }
}

export function formatPlan(plan: BuildPlan): string {
  const lines: string[] = [];
  lines.push(`Dockerfile: ${plan.file}`);
  lines.push(`platform: ${plan.platform} (building on ${plan.buildPlatform})`);
  const t = plan.target;
  lines.push(`target: ${t.name ? `"${t.name}" ` : ''}(stage ${t.index})`);
  if (plan.skippedStages.length) {
    lines.push(`not needed: ${plan.skippedStages.map((s) => (s.name ? `"${s.name}" (stage ${s.index})` : `stage ${s.index}`)).join(', ')}`);
  }
  if (plan.images.length) lines.push(`images: ${plan.images.join(', ')}`);
  for (const stage of plan.stages) {
    lines.push('');
    lines.push(`stage ${stage.index}${stage.name ? ` "${stage.name}"` : ''}: FROM ${baseText(stage, plan)} [${stage.platform}]`);
    for (const step of stage.steps) {
      const detail = stepDetail(step);
      lines.push(`  #${step.id} ${step.position} ${oneLine(step.original)}${step.onbuild ? ' (ONBUILD trigger)' : ''}`);
      if (detail) lines.push(`      ${detail}`);
    }
  }
  return lines.join('\n');
}

function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > 100 ? flat.slice(0, 97) + '...' : flat;
}

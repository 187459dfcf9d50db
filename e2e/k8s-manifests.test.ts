// deploy/k8s/*.yaml checked offline: every object against the published Kubernetes and Gateway
// API OpenAPI schemas (vendored by the kubernetes-models and @kubernetes-models/gateway-api
// packages, validated with ajv), then what a schema cannot see: every Service selects a
// Deployment's pods on a port they name, every HTTPRoute reaches Services and Gateway listeners
// that exist, every ConfigMap a pod mounts exists, and the app's REDIS_URL names the Redis
// Service. No cluster is involved; deploy/k8s/README.md says what was and was not run.
import assert from 'node:assert/strict'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { Gateway, HTTPRoute } from '@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1'
import { Deployment } from 'kubernetes-models/apps/v1'
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1'
import { parseAllDocuments } from 'yaml'
import { REPO } from './processes.js'

const DIR = join(REPO, 'deploy', 'k8s')

/** The kinds the manifests may use, each with its schema-checked model. */
const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
  'gateway.networking.k8s.io/v1/Gateway': Gateway,
  'gateway.networking.k8s.io/v1/HTTPRoute': HTTPRoute,
}

// biome-ignore lint/suspicious/noExplicitAny: manifests are untyped YAML until validated
type Obj = any

async function loadManifests(): Promise<{ file: string; obj: Obj }[]> {
  const out: { file: string; obj: Obj }[] = []
  for (const file of (await readdir(DIR)).filter((f) => f.endsWith('.yaml')).sort()) {
    for (const doc of parseAllDocuments(await readFile(join(DIR, file), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${file}: YAML errors`)
      const obj = doc.toJS()
      if (obj !== null) out.push({ file, obj })
    }
  }
  return out
}

function validate(obj: Obj): void {
  const Model = MODELS[`${obj.apiVersion}/${obj.kind}`]
  if (!Model) throw new Error(`${obj.apiVersion} ${obj.kind}: not a kind this check knows (add its model to MODELS)`)
  new Model(obj as never).validate()
}

const manifests = await loadManifests()
const of = (kind: string) => manifests.filter((m) => m.obj.kind === kind).map((m) => m.obj)

describe('deploy/k8s manifests', () => {
  test('every object is valid against the Kubernetes / Gateway API schema', () => {
    assert.ok(manifests.length >= 10, `only ${manifests.length} objects`)
    for (const { file, obj } of manifests) {
      assert.doesNotThrow(() => validate(obj), `${file}: ${obj.kind} ${obj.metadata?.name}`)
      assert.equal(obj.metadata.namespace ?? (obj.kind === 'Namespace' ? undefined : 'missing'), obj.kind === 'Namespace' ? undefined : 'edgestack', `${file}: ${obj.kind} ${obj.metadata.name} namespace`)
    }
  })

  // The published schemas allow unknown fields (the API server's strict field validation is
  // what refuses those): a misspelt field name is not caught here.
  test('the schema check is live: no selector, replicas "three", an unknown kind, a wrong enum: each refused', () => {
    const app = of('Deployment').find((d) => d.metadata.name === 'demo-app')
    assert.ok(app)
    assert.throws(() => validate({ ...app, spec: { ...app.spec, selector: undefined } }))
    assert.throws(() => validate({ ...app, spec: { ...app.spec, replicas: 'three' } }))
    assert.throws(() => validate({ ...app, kind: 'Deploymnet' }), /not a kind this check knows/)
    const route = of('HTTPRoute')[0]
    const sticky = { ...route, spec: { ...route.spec, rules: [{ ...route.spec.rules[0], sessionPersistence: { type: 'Sticky' } }] } }
    assert.throws(() => validate(sticky), /sessionPersistence\/type must be equal to one of the allowed values/)
  })

  test('each layer is a Deployment with a Service selecting its pods on a named container port', () => {
    const deployments = of('Deployment')
    assert.deepEqual(deployments.map((d) => d.metadata.name).sort(), ['caching-router', 'demo-app', 'redis', 'static-server'])
    assert.ok(deployments.find((d) => d.metadata.name === 'demo-app').spec.replicas > 1, 'demo-app runs several instances')
    for (const svc of of('Service')) {
      const selected = deployments.filter((d) => Object.entries(svc.spec.selector).every(([k, v]) => d.spec.template.metadata.labels[k] === v))
      assert.equal(selected.length, 1, `Service ${svc.metadata.name} selects ${selected.length} Deployments`)
      const d = selected[0]
      assert.deepEqual(d.spec.selector.matchLabels, svc.spec.selector, `${d.metadata.name}: selector`)
      const named = d.spec.template.spec.containers.flatMap((c: Obj) => (c.ports ?? []).map((p: Obj) => p.name))
      for (const p of svc.spec.ports) assert.ok(named.includes(p.targetPort), `Service ${svc.metadata.name}: targetPort ${p.targetPort}`)
    }
  })

  test('the HTTPRoute reaches existing Services and Gateway listeners; /socket.io/ goes to the app with session persistence', () => {
    const services = new Map(of('Service').map((s) => [s.metadata.name, s.spec.ports.map((p: Obj) => p.port)]))
    const gateways = new Map(of('Gateway').map((g) => [g.metadata.name, g.spec.listeners.map((l: Obj) => l.name)]))
    const routes = of('HTTPRoute')
    assert.equal(routes.length, 1)
    for (const route of routes) {
      for (const p of route.spec.parentRefs) assert.ok(gateways.get(p.name)?.includes(p.sectionName), `parentRef ${p.name}/${p.sectionName}`)
      for (const rule of route.spec.rules) {
        for (const b of rule.backendRefs) assert.ok(services.get(b.name)?.includes(b.port), `backendRef ${b.name}:${b.port}`)
      }
      const io = route.spec.rules.find((r: Obj) => r.matches?.some((m: Obj) => m.path?.value === '/socket.io/'))
      assert.deepEqual(io?.backendRefs.map((b: Obj) => b.name), ['demo-app'])
      assert.equal(io?.sessionPersistence?.type, 'Cookie')
    }
  })

  test('mounted ConfigMaps exist with the files the commands read; REDIS_URL names the Redis Service', () => {
    const maps = new Map(of('ConfigMap').map((c) => [c.metadata.name, Object.keys(c.data)]))
    for (const d of of('Deployment')) {
      const volumes = d.spec.template.spec.volumes ?? []
      for (const v of volumes.filter((v: Obj) => v.configMap)) {
        const keys = maps.get(v.configMap.name)
        assert.ok(keys, `${d.metadata.name}: ConfigMap ${v.configMap.name}`)
        const mount = d.spec.template.spec.containers[0].volumeMounts.find((m: Obj) => m.name === v.name).mountPath
        const files = d.spec.template.spec.containers[0].command.filter((a: string) => a.startsWith(`${mount}/`))
        assert.ok(files.length > 0, `${d.metadata.name} reads nothing from ${mount}`)
        for (const f of files) assert.ok(keys.includes(f.slice(mount.length + 1)), `${d.metadata.name}: ${f} not in ${v.configMap.name}`)
      }
    }
    const app = of('Deployment').find((d) => d.metadata.name === 'demo-app')
    const url = new URL(app.spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'REDIS_URL').value)
    const redis = of('Service').find((s) => s.metadata.name === url.hostname)
    assert.ok(redis?.spec.ports.some((p: Obj) => String(p.port) === url.port), `REDIS_URL ${url.href}`)
  })
})

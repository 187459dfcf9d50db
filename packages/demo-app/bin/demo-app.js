#!/usr/bin/env node
import { launch } from '@edgestack/common/launch'

await launch('demo-app', import.meta.url)

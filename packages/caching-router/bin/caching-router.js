#!/usr/bin/env node
import { launch } from '@edgestack/common/launch'

await launch('caching-router', import.meta.url)

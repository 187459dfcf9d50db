#!/usr/bin/env node
import { launch } from '@edgestack/common/launch'

await launch('static-server', import.meta.url)

/** The Traefik labels of shared/seed-labels.txt: the label set an existing deployment uses. */
export const SEED_TRAEFIK_LABELS: Readonly<Record<string, string>> = {
  'traefik.http.routers.vistacredit-web-develop-http.entrypoints': 'http',
  'traefik.http.services.vistacredit-web-develop.loadbalancer.server.port': '80',
  'traefik.http.routers.vistacredit-web-develop-http.middlewares': 'non-www-redirect-secure',
  'traefik.http.routers.vistacredit-web-develop-https.middlewares': 'non-www-redirect-secure',
  'traefik.http.routers.vistacredit-web-develop-https.entrypoints': 'https',
  'traefik.http.routers.vistacredit-web-develop-https.tls': 'true',
  'traefik.http.routers.vistacredit-web-develop-https.tls.certresolver': 'le',
  'traefik.http.routers.vistacredit-web-develop-http.rule': 'Host(`vista.doc.endevel.cz`)',
  'traefik.http.routers.vistacredit-web-develop-https.rule': 'Host(`vista.doc.endevel.cz`)',
};

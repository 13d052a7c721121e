import {
  CanActivate,
  createParamDecorator,
  ExecutionContext,
  Injectable,
  UnauthorizedException,
  UseGuards,
} from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { AppSession } from './app-session';
import { AppSessionService } from './app-session.service';

type SessionRequest = FastifyRequest & { appSession?: AppSession };

/** Lets a request through only with `Authorization: Bearer <session>` signed by us and unexpired. */
@Injectable()
export class AppSessionGuard implements CanActivate {
  constructor(private readonly sessions: AppSessionService) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<SessionRequest>();
    const match = /^Bearer\s+(\S+)\s*$/i.exec(request.headers.authorization ?? '');
    const session = match ? this.sessions.verify(match[1]) : null;
    if (session === null) {
      throw new UnauthorizedException('A valid app session is required (Authorization: Bearer).');
    }
    request.appSession = session;
    return true;
  }
}

/** On a vendor's controller or route under /app-api/: only the app's verified users get in. */
export const RequiresAppSession = (): ClassDecorator & MethodDecorator =>
  UseGuards(AppSessionGuard);

/** The verified session (portal, user, placement) of a route guarded by @RequiresAppSession(). */
export const CurrentAppSession = createParamDecorator(
  (_data: unknown, context: ExecutionContext): AppSession => {
    const session = context.switchToHttp().getRequest<SessionRequest>().appSession;
    if (!session) throw new UnauthorizedException('A valid app session is required.');
    return session;
  },
);
